/**
 * Parse failures as values. Parsers on the hot path return `View | WireError` and never throw, so a
 * capture loop can count a bad packet and move on.
 */

/**
 * Why a packet could not be read: `truncated` when the buffer ends before a header does (a short capture),
 * `malformed` when fields contradict each other, `unsupported` when the packet is valid but of a form we do
 * not follow (fragments, jumbograms).
 */
export interface WireError {
  readonly kind: "truncated" | "malformed" | "unsupported";
  readonly message: string;
}

/** Makes a `WireError` value. */
export function wireError(kind: WireError["kind"], message: string): WireError {
  return { kind, message };
}

/** Tells a `WireError` from a parsed view or value. */
export function isWireError(x: unknown): x is WireError {
  return typeof x === "object" && x !== null && typeof (x as WireError).kind === "string" &&
    typeof (x as WireError).message === "string";
}
