/**
 * What a process's resident memory is, mapping by mapping (/proc/PID/smaps): for the bench's step lines,
 * so that each megabyte of a copier's peak has a name.
 *
 * Which mapping is what, as seen in a copy at ~10k new connections/s (bench/RESULTS.md, twelfth round):
 * - V8 places each heap page (256 KiB, large objects their own size) at a random address of its own
 *   choosing, far below the executable and the libraries, where nothing else maps; its code range is one
 *   512 MiB `rwxp` reservation among the libraries.
 * - glibc's malloc keeps the main thread's heap in `[heap]` (brk) and every other arena in a 64 MiB
 *   reservation of its own, aligned to 64 MiB: a `rw-p` head that grows into the `---p` rest.
 * - A thread's stack is a `rw-p` mapping right above a 4 KiB `---p` guard page; the main thread's is
 *   `[stack]`.
 * - What is left anonymous: malloc's blocks too large for an arena (128 KiB and up, each mapped by itself:
 *   large ArrayBuffers' contents among them) and the runtime's own small mappings.
 */

/** Resident kB by what the memory is; the parts add up to the process's RSS. */
export interface MemorySplit {
  /** The program's executable file (its data pages, copied on write, included). */
  readonly executable: number;
  /** Shared mappings of sockets: a packet capture's ring. */
  readonly captureRing: number;
  /** Other files: shared libraries, the runtime's caches. */
  readonly otherFiles: number;
  /** V8's heap pages (committed and touched). */
  readonly v8Heap: number;
  /** V8's code range (compiled code). */
  readonly v8Code: number;
  /** glibc malloc's main arena (`[heap]`). */
  readonly mallocMain: number;
  /** glibc malloc's other arenas, the 64 MiB reservations. */
  readonly mallocArenas: number;
  /** How many such arenas the process has. */
  readonly mallocArenaCount: number;
  /** Thread stacks, the main thread's included. */
  readonly stacks: number;
  /** Every other anonymous mapping: malloc's large blocks mapped one by one, the runtime's own. */
  readonly otherAnonymous: number;
}

interface Mapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly perms: string;
  readonly path: string;
  readonly rssKb: number;
}

const ARENA_BYTES = 64n << 20n;
const GUARD_BYTES = 4096n;

/** The mappings of an smaps text, in address order. */
function mappings(smaps: string): Mapping[] {
  const found: Mapping[] = [];
  let current: Omit<Mapping, "rssKb"> | undefined;
  for (const line of smaps.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null) {
      current = {
        start: BigInt(`0x${header[1]}`),
        end: BigInt(`0x${header[2]}`),
        perms: header[3],
        path: header[4],
      };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null && current !== undefined) found.push({ ...current, rssKb: Number(rss[1]) });
  }
  return found;
}

/** Splits the resident memory of an smaps text; `executable` is the program's path (/proc/PID/exe). */
export function splitMemory(smaps: string, executable: string): MemorySplit {
  const all = mappings(smaps);
  // The lowest address of a file mapping: V8's heap pages lie below it, everything else of ours above.
  const lowestFile = all.find((mapping) => mapping.path.startsWith("/"))?.start ?? 0n;
  const split = {
    executable: 0,
    captureRing: 0,
    otherFiles: 0,
    v8Heap: 0,
    v8Code: 0,
    mallocMain: 0,
    mallocArenas: 0,
    mallocArenaCount: 0,
    stacks: 0,
    otherAnonymous: 0,
  };
  all.forEach((mapping, index) => {
    const { path, perms, rssKb } = mapping;
    const previous = all[index - 1];
    const next = all[index + 1];
    if (path === executable) split.executable += rssKb;
    else if (path.startsWith("socket:")) split.captureRing += rssKb;
    else if (path.startsWith("/")) split.otherFiles += rssKb;
    else if (path === "[heap]") split.mallocMain += rssKb;
    else if (path === "[stack]") split.stacks += rssKb;
    else if (path !== "") split.otherFiles += rssKb; // [vdso], [vvar]: the kernel's pages
    else if (mapping.start < lowestFile) split.v8Heap += rssKb;
    else if (perms === "rwxp") split.v8Code += rssKb;
    else if (isArenaHead(mapping, next)) {
      split.mallocArenas += rssKb;
      split.mallocArenaCount++;
    } else if (
      perms === "rw-p" && previous !== undefined && previous.perms === "---p" && previous.path === "" &&
      previous.end === mapping.start && previous.end - previous.start === GUARD_BYTES
    ) split.stacks += rssKb;
    else split.otherAnonymous += rssKb;
  });
  return split;
}

/** A 64 MiB-aligned `rw-p` head whose `---p` rest (if any) fills the reservation to 64 MiB. */
function isArenaHead(mapping: Mapping, next: Mapping | undefined): boolean {
  if (mapping.perms !== "rw-p" || mapping.start % ARENA_BYTES !== 0n) return false;
  if (mapping.end - mapping.start === ARENA_BYTES) return true;
  return next !== undefined && next.perms === "---p" && next.path === "" && next.start === mapping.end &&
    next.end === mapping.start + ARENA_BYTES;
}

/** A copier's memory at its highest RSS in a step: the split, and V8's own figures if it is ours. */
export interface MemoryAtPeak {
  /** The process's RSS when sampled, kB. */
  readonly rssKb: number;
  readonly split: MemorySplit;
  /** V8's heap (committed, used) and external memory in bytes, from copy's stats line then. */
  readonly v8: { readonly heap: number; readonly heapUsed: number; readonly external: number } | undefined;
}

/**
 * Samples process `pid` every `intervalMs` until `stop`, and keeps the sample of the highest RSS: its
 * smaps split, and V8's figures of the same second that `v8` reads (copy's last stats line).
 */
export function sampleMemoryAtPeak(
  pid: number,
  v8: () => Promise<MemoryAtPeak["v8"]>,
  intervalMs = 500,
): { stop(): Promise<MemoryAtPeak | undefined> } {
  let peak: MemoryAtPeak | undefined;
  let running = true;
  const loop = (async () => {
    const executable = await Deno.readLink(`/proc/${pid}/exe`).catch(() => "");
    while (running) {
      try {
        const status = await Deno.readTextFile(`/proc/${pid}/status`);
        const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
        if (rssKb > (peak?.rssKb ?? 0)) {
          const smaps = await Deno.readTextFile(`/proc/${pid}/smaps`);
          peak = { rssKb, split: splitMemory(smaps, executable), v8: await v8() };
        }
      } catch {
        return; // the process ended
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** One line of MB: the split at the peak, and V8's heap and external memory beside it. */
export function formatMemoryAtPeak(memory: MemoryAtPeak): string {
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const bytesMb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const { split, v8 } = memory;
  const anonymous = split.v8Heap + split.v8Code + split.mallocMain + split.mallocArenas + split.stacks +
    split.otherAnonymous;
  return [
    `RSS ${mb(memory.rssKb)}:`,
    `files ${mb(split.executable + split.captureRing + split.otherFiles)} (executable ${
      mb(split.executable)
    }, capture ring ${mb(split.captureRing)}, other ${mb(split.otherFiles)});`,
    `anonymous ${mb(anonymous)}: V8 heap pages ${mb(split.v8Heap)}` +
    (v8 === undefined
      ? ""
      : ` (V8 says committed ${bytesMb(v8.heap)}, used ${bytesMb(v8.heapUsed)}; external ${
        bytesMb(v8.external)
      }, in malloc's)`) +
    `, V8 code ${mb(split.v8Code)},`,
    `malloc main ${mb(split.mallocMain)}, malloc arenas ${
      mb(split.mallocArenas)
    } (${split.mallocArenaCount}),`,
    `thread stacks ${mb(split.stacks)}, other anonymous ${mb(split.otherAnonymous)}`,
  ].join(" ");
}
