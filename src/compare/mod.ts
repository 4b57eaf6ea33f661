/**
 * Response comparison: did the target answer each copied turn the way the online server did? Pure code: the
 * transport feeds it each turn's request and answers (`Answer`, bounded), it gives verdicts, counters, an
 * endpoint table, samples and an HTML report.
 *
 * @example
 * ```ts
 * const comparison = new Comparison({ mode: "http" }, (sample) => diffFile.write(sample));
 * comparison.compare({ request, online: Answer.of(onlineBytes), target: Answer.of(targetBytes) });
 * const html = renderReport({ title, subtitle, totals: comparison.totals, rows: comparison.rows(), samples });
 * ```
 *
 * @module
 */
export { Answer, DEFAULT_ANSWER_LIMIT } from "./answer.ts";
export {
  Comparison,
  type ComparisonCounters,
  type ComparisonOptions,
  type EndpointRow,
  type Sample,
  type Turn,
  type Verdict,
} from "./comparison.ts";
export { type CompareMode, type Difference, VOLATILE_HEADERS } from "./differ.ts";
export { collapsePath, endpointOf } from "./endpoint.ts";
export { ResponseFraming } from "./http.ts";
export { renderReport, type ReportInput } from "./report.ts";
