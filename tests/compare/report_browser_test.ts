/**
 * The HTML report as a person sees it: rendered by a real headless Chromium (Debian's `chromium`, which
 * tests/setup.sh installs), its table read back from the rendered page, and a screenshot kept in
 * `test-artifacts/report.png`.
 */
import assert from "node:assert/strict";
import { Answer, Comparison, renderReport, type Sample } from "../../src/compare/mod.ts";
import { bytes, response } from "./_http.ts";

const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url);

/** Measures the rendered page from inside it and writes the figures into the DOM for `--dump-dom`. */
const MEASURE = `<script>
addEventListener("load", () => {
  const rows = [...document.querySelectorAll("#endpoints tbody tr")].map((tr) => {
    const cell = tr.querySelector("td.endpoint");
    const box = cell.getBoundingClientRect();
    return { text: [...tr.cells].map((td) => td.textContent), color: getComputedStyle(cell).color, width: box.width, height: box.height };
  });
  const sides = [...document.querySelectorAll(".side pre")].map((pre) => pre.getBoundingClientRect().left);
  const marked = document.querySelectorAll(".sample .del, .sample .ins").length;
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({ rows, sides, marked });
  document.body.append(out);
});
</script>`;

function chromium(args: string[]): Promise<Deno.CommandOutput> {
  try {
    return new Deno.Command("chromium", {
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(`Chromium is needed for this test (sh tests/setup.sh installs it): ${error}`);
  }
}

Deno.test("the report renders in Chromium: a table row per endpoint, the changed one marked, diffs side by side", async () => {
  const samples: Sample[] = [];
  const comparison = new Comparison({ mode: "http" }, (sample) => samples.push(sample));
  const get = (path: string) => bytes(`GET ${path} HTTP/1.1\r\nHost: shop\r\n\r\n`);
  const json = (body: unknown) =>
    response(200, { "Content-Type": "application/json" }, JSON.stringify(body, null, 1));
  for (let i = 0; i < 3; i++) {
    comparison.compare({
      request: get(`/users/${i}`),
      online: Answer.of(json({ id: i })),
      target: Answer.of(json({ id: i })),
    });
  }
  comparison.compare({
    request: get("/cart/7"),
    online: Answer.of(json({ total: 10, items: 2 })),
    target: Answer.of(json({ total: 12, items: 2 })),
  });
  const html = renderReport({
    title: "tcpshadow comparison",
    subtitle: "--compare http, target 198.18.0.3:8080",
    totals: comparison.totals,
    rows: comparison.rows(),
    samples,
  });
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const page = new URL("report.html", ARTIFACTS);
  const measured = new URL("report-measured.html", ARTIFACTS);
  await Deno.writeTextFile(page, html);
  await Deno.writeTextFile(measured, html.replace("</body>", `${MEASURE}</body>`));

  const dump = await chromium(["--dump-dom", measured.href]);
  const match = /<pre id="measured">(.*?)<\/pre>/s.exec(new TextDecoder().decode(dump.stdout));
  assert.ok(match, `Chromium rendered no page: ${new TextDecoder().decode(dump.stderr).slice(-400)}`);
  const figures = JSON.parse(match[1].replaceAll("&quot;", '"').replaceAll("&amp;", "&")) as {
    rows: { text: string[]; color: string; width: number; height: number }[];
    sides: number[];
    marked: number;
  };
  assert.deepEqual(figures.rows.map((row) => row.text.slice(0, 4)), [
    ["GET /cart/{n}", "1", "0", "1"],
    ["GET /users/{n}", "3", "3", "0"],
  ]);
  assert.equal(figures.rows[0].color, "rgb(204, 51, 51)", "the changed endpoint is red");
  assert.notEqual(figures.rows[1].color, figures.rows[0].color);
  assert.ok(figures.rows.every((row) => row.width > 50 && row.height > 10), JSON.stringify(figures.rows));
  assert.equal(figures.sides.length, 2);
  assert.ok(figures.sides[1] > figures.sides[0] + 100, "online and target side by side");
  assert.ok(figures.marked >= 2, "the differing lines are marked");

  const screenshot = new URL("report.png", ARTIFACTS);
  await Deno.remove(screenshot).catch(() => {});
  await chromium([`--screenshot=${screenshot.pathname}`, "--window-size=1200,900", page.href]);
  const png = await Deno.readFile(screenshot);
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG screenshot");
  assert.ok(png.length > 10_000, `screenshot of ${png.length} bytes: blank?`);
});
