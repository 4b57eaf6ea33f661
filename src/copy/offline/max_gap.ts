/**
 * TCPCopy's offline `-I` (`copy --input --max-gap MS`): a recording's long silences (a night without
 * traffic, a pause between test runs) are skipped rather than waited out, while shorter gaps keep
 * their recorded length, so the pace within each burst is the recorded one.
 */

/**
 * A function of one pass over a file: given each packet's time since the pass's first (ms, in file
 * order), returns that time less every gap longer than `maxGapMs` seen so far.
 *
 * @example
 * const shift = skipLongGaps(1000);
 * [0, 200, 60_200, 60_300].map(shift); // [0, 200, 200, 300]
 */
export function skipLongGaps(maxGapMs: number): (recordedMs: number) => number {
  let last: number | undefined;
  let skipped = 0;
  return (recordedMs) => {
    if (last !== undefined && recordedMs - last > maxGapMs) skipped += recordedMs - last;
    last = last === undefined ? recordedMs : Math.max(last, recordedMs);
    return recordedMs - skipped;
  };
}
