/**
 * TCPCopy 1.3 and intercept 1.0 flags that tcpshadow accepts without acting on them, because what they
 * tune does not exist here (a session pool, a fixed hash table size): a command given one says so in
 * one line naming what does the job here, and carries on. None is an unknown option.
 */

/** A flag accepted for TCPCopy's sake only: its short and long names, and what to use instead. */
export interface AcceptedFlag {
  readonly short: string;
  readonly long: string;
  /** Ends the notice: why it changes nothing here, and our equivalent. */
  readonly instead: string;
}

/** The parseArgs specs of `flags` (each takes a value), to spread into a command's own. */
export function acceptedFlagSpecs(
  flags: readonly AcceptedFlag[],
): Record<string, { type: "string"; short: string }> {
  return Object.fromEntries(flags.map((flag) => [flag.long, { type: "string", short: flag.short }]));
}

/** One notice line for each of `flags` given in `values`. */
export function acceptedFlagNotices(
  flags: readonly AcceptedFlag[],
  values: Readonly<Record<string, unknown>>,
): string[] {
  return flags.filter((flag) => values[flag.long] !== undefined).map((flag) =>
    `-${flag.short} ${values[flag.long]} is accepted for TCPCopy but changes nothing here: ${flag.instead}`
  );
}
