/**
 * The comparison as one self-contained HTML page (no external assets): the counters, the table of
 * endpoints, and each kept sample side by side, the lines that differ marked.
 */
import type { ComparisonCounters, EndpointRow, Sample } from "./comparison.ts";

/** What the page shows. */
export interface ReportInput {
  readonly title: string;
  /** When the run ended, and what it compared (`--compare http against 198.18.0.3:8080`). */
  readonly subtitle: string;
  readonly totals: ComparisonCounters;
  readonly rows: readonly EndpointRow[];
  readonly samples: readonly Sample[];
}

const MAX_DIFF_LINES = 400;

/** The page, as HTML text. */
export function renderReport(input: ReportInput): string {
  const t = input.totals;
  const cards = [
    ["compared", t.compared],
    ["same", t.same],
    ["different", t.different],
    ["noise", t.noise],
    ["no answer", t["no-answer"]],
    ["extra answer", t["extra-answer"]],
  ].map(([name, value]) =>
    `<div class="card ${value && name === "different" ? "bad" : ""}"><b>${value}</b>${name}</div>`
  )
    .join("");
  const rows = input.rows.map((row) =>
    `<tr class="${row.different + row["no-answer"] + row["extra-answer"] > 0 ? "bad" : "good"}">` +
    `<td class="endpoint">${escape(row.endpoint)}</td><td>${row.compared}</td><td>${row.same}</td>` +
    `<td>${row.different}</td><td>${row.noise}</td><td>${row["no-answer"]}</td><td>${
      row["extra-answer"]
    }</td>` +
    `<td>${[...row.fields].map(([field, count]) => `${escape(field)} (${count})`).join(", ")}</td>` +
    `<td>${[...row.noisyFields].map(escape).join(", ")}</td></tr>`
  ).join("\n");
  const samples = input.samples.map((sample, i) => renderSample(sample, i)).join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(input.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0}p.sub{color:#666;margin:4px 0 16px}
.cards{display:flex;gap:8px;margin-bottom:16px}.card{border:1px solid #ccc;border-radius:6px;padding:8px 12px}
.card b{display:block;font-size:20px}.card.bad{border-color:#c33;color:#c33}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
tr.bad td.endpoint{color:#c33;font-weight:bold}td.endpoint{font-family:monospace}
.sample{border:1px solid #ddd;border-radius:6px;margin:16px 0;padding:8px}
.side{display:grid;grid-template-columns:1fr 1fr;gap:8px}
pre{margin:0;padding:6px;background:#f7f7f7;overflow:auto;max-height:360px;white-space:pre-wrap;word-break:break-all;font-size:12px}
.del{background:#fdd}.ins{background:#dfd}
</style></head><body>
<h1>${escape(input.title)}</h1><p class="sub">${escape(input.subtitle)}</p>
<div class="cards">${cards}</div>
<table id="endpoints"><thead><tr><th>endpoint</th><th>compared</th><th>same</th><th>different</th><th>noise</th>
<th>no answer</th><th>extra answer</th><th>differing fields</th><th>noise fields</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Differences</h2>
${samples || "<p>None.</p>"}
</body></html>
`;
}

function renderSample(sample: Sample, index: number): string {
  const [online, target] = sideBySide(sample.online, sample.target);
  const differences = sample.differences.map((d) =>
    `<tr><td>${escape(d.field)}</td><td><code>${escape(d.online)}</code></td><td><code>${
      escape(d.target)
    }</code></td></tr>`
  ).join("");
  return `<div class="sample" id="sample-${index}"><h3>${escape(sample.endpoint)}: ${sample.verdict}</h3>
<pre>${escape(sample.request)}</pre>
${differences ? `<table><tr><th>field</th><th>online</th><th>target</th></tr>${differences}</table>` : ""}
<div class="side"><div><b>online</b><pre>${online}</pre></div><div><b>target</b><pre>${target}</pre></div></div></div>`;
}

/** Both texts as HTML, the lines found in only one of them marked (a longest-common-subsequence diff). */
function sideBySide(a: string, b: string): [string, string] {
  const left = a.replaceAll("\r\n", "\n").split("\n").slice(0, MAX_DIFF_LINES);
  const right = b.replaceAll("\r\n", "\n").split("\n").slice(0, MAX_DIFF_LINES);
  const common = Array.from({ length: left.length + 1 }, () => new Uint16Array(right.length + 1));
  for (let i = left.length - 1; i >= 0; i--) {
    for (let j = right.length - 1; j >= 0; j--) {
      common[i][j] = left[i] === right[j]
        ? common[i + 1][j + 1] + 1
        : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const inLeft = new Set<number>();
  const inRight = new Set<number>();
  for (let i = 0, j = 0; i < left.length && j < right.length;) {
    if (left[i] === right[j]) {
      inLeft.add(i++);
      inRight.add(j++);
    } else if (common[i + 1][j] >= common[i][j + 1]) i++;
    else j++;
  }
  const mark = (lines: string[], kept: Set<number>, cls: string) =>
    lines.map((line, i) => kept.has(i) ? escape(line) : `<span class="${cls}">${escape(line)}</span>`).join(
      "\n",
    );
  return [mark(left, inLeft, "del"), mark(right, inRight, "ins")];
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
