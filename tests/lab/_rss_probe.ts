import { withCopyLab } from "./copy_lab.ts";
const extra = Deno.args;
await withCopyLab({}, async (lab) => {
  const copy = await lab.startCopy(extra);
  await new Promise((r) => setTimeout(r, 3000));
  const status = await Deno.readTextFile(`/proc/${copy.pid}/status`);
  console.log(
    extra.join(" "),
    status.split("\n").filter((l) => /VmHWM|VmRSS|RssAnon|RssFile|RssShmem|Threads/.test(l)).map((l) =>
      l.replace(/\s+/g, " ")
    ).join(" | "),
  );
  const smaps = await Deno.readTextFile(`/proc/${copy.pid}/smaps`);
  const maps: Array<[number, string]> = [];
  let name = "";
  for (const line of smaps.split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = head[1] || "[anon]";
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) maps.push([Number(rss[1]), name]);
  }
  const byName = new Map<string, number>();
  for (const [kb, n] of maps) byName.set(n, (byName.get(n) ?? 0) + kb);
  console.log(
    [...byName].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, kb]) => `${n}: ${kb} kB`).join("\n"),
  );
  await lab.stopCopy(copy);
});
