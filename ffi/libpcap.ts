/**
 * Packet capture, pcap file reading and writing, and BPF filters, through libpcap. Every failure becomes
 * a `FatalError` carrying libpcap's own explanation.
 */
import { FatalError } from "../src/errors.ts";
import { cString, readCString, size, textBefore } from "./_c.ts";
import { copyFromAddress, errnoMessage, FdPoller, lastErrno, type PacketBatch, sendBatchOn } from "./libc.ts";
import {
  BPF_PROGRAM_SIZE,
  pcap,
  PCAP_D_IN,
  PCAP_D_INOUT,
  PCAP_D_OUT,
  PCAP_ERRBUF_SIZE,
  PCAP_ERROR_BREAK,
  PCAP_ERROR_NO_SUCH_DEVICE,
  PCAP_ERROR_PERM_DENIED,
  PCAP_ERROR_PROMISC_PERM_DENIED,
  PCAP_NETMASK_UNKNOWN,
  PCAP_STAT_DROPPED,
  PCAP_STAT_RECEIVED,
  PCAP_STAT_SIZE,
  PCAP_TSTAMP_PRECISION_NANO,
  PKTHDR_CAPTURED_LENGTH,
  PKTHDR_FRACTION,
  PKTHDR_ORIGINAL_LENGTH,
  PKTHDR_SECONDS,
  PKTHDR_SIZE,
} from "./_pcap.ts";

const DEFAULT_SNAPLEN = 65535;
/**
 * Frames up to this long get a view kept per length (an Ethernet MTU's frames and a VLAN tag's more); longer
 * ones (merged by GRO, of any length) a view each.
 */
const VIEWS_KEPT_UP_TO = 2048;
/**
 * Without immediate mode the kernel hands packets over in blocks (TPACKET_V3, packed, so a buffer holds
 * many more packets than with immediate mode's fixed snaplen-sized frames); a block is handed over when
 * full or after this long. libpcap makes every block 256 KiB whatever the buffer size, so a 16 MiB
 * buffer is 64 blocks; at 8,000 connections/s (about 6 MB/s, estimated) a block handed over after 10 ms
 * held about a quarter of what it could, so the buffer covered about 0.8 s of falling behind instead of
 * 2.7 s. Packets wait at most this long before copy sees them, which only shifts a copy's timing.
 */
const READ_TIMEOUT_MS = 50;

const DIRECTIONS = { in: PCAP_D_IN, out: PCAP_D_OUT, inout: PCAP_D_INOUT } as const;
/** A sending handle's receive ring: as small as libpcap makes it, since it is never read. */
const SENDER_BUFFER = 1 << 16;
/** Matches no packet (none is 0 bytes long): the kernel drops every one before the ring. */
const MATCH_NOTHING = "less 0";
const EAGAIN = 11;
const ENOBUFS = 105;

/** How to open a live capture. */
export interface LiveOptions {
  /** Interface name; `"any"` captures on all interfaces. */
  device: string;
  /** Bytes kept of each packet; default 65535. */
  snaplen?: number;
  /** Deliver packets as they arrive rather than in batches; default true. */
  immediate?: boolean;
  /** Kernel capture buffer in bytes; default libpcap's (2 MiB). */
  bufferSize?: number;
  /** Default false. */
  promiscuous?: boolean;
  /** Which packets to see, relative to the host; default both. */
  direction?: "in" | "out" | "inout";
  /** A BPF filter expression (tcpdump syntax). */
  filter?: string;
}

/**
 * One packet as `Capture.next` returns it. The same object is refilled by every call, and `data` is a
 * view that the next call overwrites: copy what must outlive it.
 */
export interface CapturedPacket {
  timeSeconds: number;
  /** Nanoseconds within `timeSeconds`. */
  timeNanos: number;
  /** Bytes captured, `data.length`. */
  capturedLength: number;
  /** Bytes the packet had on the wire. */
  originalLength: number;
  data: Uint8Array<ArrayBuffer>;
}

/** Receive counters of a live capture, as the kernel reports them since it was opened. */
export interface CaptureStats {
  received: number;
  /** Dropped for lack of buffer space: the capture loop did not keep up. */
  dropped: number;
}

type CaptureKind = "live" | "offline" | "dead";

/** A capture's open handle, for `PcapWriter` and `compileFilter` only: not part of `Capture`'s API. */
let handleOf: (capture: Capture) => Deno.PointerObject;

/** A libpcap handle: a live interface, a pcap/pcapng file being read, or a dead handle for writing files. */
export class Capture {
  /** The link-layer header type of the packets (a LINKTYPE_ value: 1 Ethernet, 113 Linux cooked, ...). */
  readonly linkType: number;
  /** libpcap's warning from activating a live capture (e.g. promiscuous mode unsupported), if any. */
  readonly warning: string | undefined;

  #handle: Deno.PointerObject | null;
  readonly #kind: CaptureKind;
  /** The device or file name, for error messages. */
  readonly #source: string;
  readonly #nanosPerTick: number;
  #poller: FdPoller | undefined;

  /** pcap_next_ex's two out-parameters, and views over them to read the pointers back. */
  readonly #headerOut = new Uint8Array(new ArrayBuffer(8));
  readonly #dataOut = new Uint8Array(new ArrayBuffer(8));
  /** The pointers pcap_next_ex leaves there, read as numbers: a pointer object per frame would be garbage. */
  readonly #headerOutView = new DataView(this.#headerOut.buffer);
  readonly #dataOutView = new DataView(this.#dataOut.buffer);
  readonly #header = new Uint8Array(new ArrayBuffer(PKTHDR_SIZE));
  readonly #headerView = new DataView(this.#header.buffer);
  #buffer: Uint8Array<ArrayBuffer>;
  /** Views of `#buffer` by length, each made once: a frame of a length seen before costs no new view. */
  readonly #views: (Uint8Array<ArrayBuffer> | undefined)[] = new Array(VIEWS_KEPT_UP_TO + 1);
  readonly #packet: CapturedPacket;

  private constructor(handle: Deno.PointerObject, kind: CaptureKind, source: string, warning?: string) {
    this.#handle = handle;
    this.#kind = kind;
    this.#source = source;
    this.warning = warning;
    this.linkType = pcap().pcap_datalink(handle);
    this.#nanosPerTick = pcap().pcap_get_tstamp_precision(handle) === PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
    this.#buffer = new Uint8Array(Math.max(pcap().pcap_snapshot(handle), DEFAULT_SNAPLEN));
    this.#packet = { timeSeconds: 0, timeNanos: 0, capturedLength: 0, originalLength: 0, data: this.#buffer };
  }

  /**
   * Opens and activates a non-blocking live capture; needs root or CAP_NET_RAW.
   * @example
   * const capture = Capture.openLive({ device: "eth0", direction: "in", filter: "tcp dst port 80" });
   * while (await capture.waitReadable(100)) for (let p = capture.next(); p; p = capture.next()) use(p);
   */
  static openLive(options: LiveOptions): Capture {
    const { device } = options;
    const errbuf = new Uint8Array(PCAP_ERRBUF_SIZE);
    const handle = pcap().pcap_create(cString(device), errbuf);
    if (handle === null) throw new FatalError(`cannot capture on ${device}: ${textBefore(errbuf)}`);
    try {
      const lib = pcap();
      lib.pcap_set_snaplen(handle, options.snaplen ?? DEFAULT_SNAPLEN);
      lib.pcap_set_immediate_mode(handle, options.immediate === false ? 0 : 1);
      if (options.bufferSize !== undefined) lib.pcap_set_buffer_size(handle, options.bufferSize);
      lib.pcap_set_promisc(handle, options.promiscuous ? 1 : 0);
      lib.pcap_set_timeout(handle, READ_TIMEOUT_MS);
      // Nanosecond stamps where the kernel offers them; otherwise libpcap stays at micro, which is fine.
      lib.pcap_set_tstamp_precision(handle, PCAP_TSTAMP_PRECISION_NANO);
      const status = lib.pcap_activate(handle);
      if (status < 0) {
        throw new FatalError(`cannot capture on ${device}: ${activationFailure(handle, status)}`);
      }
      const warning = status > 0 ? lastError(handle) || readCString(lib.pcap_statustostr(status)) : undefined;
      if (
        options.direction !== undefined && lib.pcap_setdirection(handle, DIRECTIONS[options.direction]) < 0
      ) {
        throw new FatalError(`cannot capture ${options.direction} on ${device}: ${lastError(handle)}`);
      }
      if (lib.pcap_setnonblock(handle, 1, errbuf) < 0) {
        throw new FatalError(`cannot capture on ${device}: ${textBefore(errbuf)}`);
      }
      const capture = new Capture(handle, "live", device, warning);
      if (options.filter !== undefined) capture.setFilter(options.filter);
      return capture;
    } catch (error) {
      pcap().pcap_close(handle);
      throw error;
    }
  }

  /**
   * Opens `device` to send link-layer frames on (`inject`, `injectBatch`); needs root or CAP_NET_RAW.
   * It receives nothing: its filter lets no packet into the ring, so the handle costs the host no copy
   * of its traffic.
   */
  static openSender(device: string): Capture {
    return Capture.openLive({ device, snaplen: 64, bufferSize: SENDER_BUFFER, filter: MATCH_NOTHING });
  }

  /** Opens a pcap or pcapng file (either byte order, micro- or nanosecond stamps) for reading. */
  static openOffline(path: string): Capture {
    const errbuf = new Uint8Array(PCAP_ERRBUF_SIZE);
    const handle = pcap().pcap_open_offline_with_tstamp_precision(
      cString(path),
      PCAP_TSTAMP_PRECISION_NANO,
      errbuf,
    );
    if (handle === null) {
      throw new FatalError(`cannot read ${path}: ${withoutPrefix(textBefore(errbuf), path)}`);
    }
    return new Capture(handle, "offline", path);
  }

  /** A handle with no source, to write files of `linkType` (with nanosecond stamps) or compile filters. */
  static openDead(linkType: number, snaplen = DEFAULT_SNAPLEN): Capture {
    const handle = pcap().pcap_open_dead_with_tstamp_precision(linkType, snaplen, PCAP_TSTAMP_PRECISION_NANO);
    if (handle === null) throw new FatalError(`libpcap cannot make a handle for link type ${linkType}`);
    return new Capture(handle, "dead", `link type ${linkType}`);
  }

  /** Keeps only packets matching the BPF `expression`; a bad expression throws with libpcap's reason. */
  setFilter(expression: string): void {
    const handle = this.#open();
    const program = compile(handle, expression);
    try {
      if (pcap().pcap_setfilter(handle, program) < 0) {
        throw new FatalError(`cannot filter ${this.#source}: ${lastError(handle)}`);
      }
    } finally {
      pcap().pcap_freecode(program);
    }
  }

  /**
   * The next packet: `null` when a live capture has nothing ready now, `undefined` at the end of a file
   * (or once closed). Reuses one `CapturedPacket` and one buffer; see `CapturedPacket`. A file that ends
   * inside a record throws `FatalError` ("truncated dump file...") after its whole packets.
   */
  next(): CapturedPacket | null | undefined {
    const handle = this.#handle;
    if (handle === null) return undefined;
    const status = pcap().pcap_next_ex(handle, this.#headerOut, this.#dataOut);
    if (status === 0) return null;
    if (status === PCAP_ERROR_BREAK) return undefined;
    if (status < 0) {
      const verb = this.#kind === "live" ? "capture on" : "cannot read";
      throw new FatalError(
        `${verb} ${this.#source}${this.#kind === "live" ? " failed" : ""}: ${lastError(handle)}`,
      );
    }
    copyFromAddress(this.#header, readAddress(this.#headerOutView));
    const header = this.#headerView;
    const capturedLength = header.getUint32(PKTHDR_CAPTURED_LENGTH, true);
    if (capturedLength > this.#buffer.length) {
      this.#buffer = new Uint8Array(capturedLength);
      this.#views.fill(undefined);
    }
    const data = this.#viewOf(capturedLength);
    copyFromAddress(data, readAddress(this.#dataOutView));
    const packet = this.#packet;
    packet.timeSeconds = readLong(header, PKTHDR_SECONDS);
    packet.timeNanos = readLong(header, PKTHDR_FRACTION) * this.#nanosPerTick;
    packet.capturedLength = capturedLength;
    packet.originalLength = header.getUint32(PKTHDR_ORIGINAL_LENGTH, true);
    packet.data = data;
    return packet;
  }

  /** `#buffer`'s first `length` bytes: one view per length up to `VIEWS_KEPT_UP_TO`, made once. */
  #viewOf(length: number): Uint8Array<ArrayBuffer> {
    if (length > VIEWS_KEPT_UP_TO) return this.#buffer.subarray(0, length);
    return this.#views[length] ??= this.#buffer.subarray(0, length);
  }

  /**
   * Resolves `true` once packets may be ready for `next`, `false` after `timeoutMs` without any. The
   * wait runs on a worker thread; the event loop keeps running. Files and closed captures are always
   * ready (`next` then tells what there is).
   */
  waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.#handle === null || this.#kind !== "live") return Promise.resolve(true);
    this.#poller ??= new FdPoller(this.selectableFd);
    return this.#poller.waitReadable(timeoutMs);
  }

  /** The live capture's descriptor, readable once packets are ready for `next` (for a poll of one's own). */
  get selectableFd(): number {
    const fd = pcap().pcap_get_selectable_fd(this.#open());
    if (fd < 0) throw new FatalError(`cannot wait for packets on ${this.#source}: no selectable descriptor`);
    return fd;
  }

  /** Packets the kernel dropped for lack of buffer space, over all of `captures`. */
  static dropped(captures: readonly Capture[]): number {
    return captures.reduce((sum, capture) => sum + capture.stats().dropped, 0);
  }

  /** Kernel receive and drop counters of a live capture. */
  stats(): CaptureStats {
    const handle = this.#open();
    const stats = new Uint8Array(PCAP_STAT_SIZE);
    if (pcap().pcap_stats(handle, stats) < 0) {
      throw new FatalError(`cannot read capture statistics of ${this.#source}: ${lastError(handle)}`);
    }
    const view = new DataView(stats.buffer);
    return {
      received: view.getUint32(PCAP_STAT_RECEIVED, true),
      dropped: view.getUint32(PCAP_STAT_DROPPED, true),
    };
  }

  /**
   * Sends a whole link-layer frame out of the live capture's interface (pcap_inject). Returns `false`
   * when the kernel had no room for it (ENOBUFS, EAGAIN) so the caller can count the drop; any other
   * failure throws `FatalError`.
   */
  inject(bytes: Uint8Array<ArrayBuffer>): boolean {
    const handle = this.#open();
    if (pcap().pcap_inject(handle, bytes, size(bytes.length)) >= 0) return true;
    const errno = lastErrno();
    if (errno === ENOBUFS || errno === EAGAIN) return false;
    throw new FatalError(`cannot send on ${this.#source}: ${lastError(handle)}`);
  }

  /**
   * Sends the link-layer frames queued in `batch` (family `"link"`) and empties it; returns how many the
   * kernel had no room for. What `inject` does frame by frame (a send(2) on libpcap's packet socket,
   * bound to the interface), in one sendmmsg(2) per batch.
   */
  injectBatch(batch: PacketBatch): number {
    if (batch.family !== "link") throw new TypeError(`IPv${batch.family} batch on a link-layer handle`);
    const fd = pcap().pcap_get_selectable_fd(this.#open());
    if (fd < 0) throw new FatalError(`cannot send on ${this.#source}: no packet socket`);
    return sendBatchOn(fd, batch);
  }

  /**
   * Releases the handle; closing twice is harmless. A pending `waitReadable` still resolves, and the
   * descriptor is closed only after it has.
   */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    const poller = this.#poller;
    if (poller === undefined) pcap().pcap_close(handle);
    else poller.idle().then(() => pcap().pcap_close(handle));
  }

  static {
    handleOf = (capture) => capture.#open();
  }

  #open(): Deno.PointerObject {
    if (this.#handle === null) throw new Error(`capture on ${this.#source} used after close`);
    return this.#handle;
  }
}

/** Writes packets to a classic pcap file, with the link type, snaplen and stamp precision of a `Capture`. */
export class PcapWriter {
  #dumper: Deno.PointerObject | null;
  readonly #path: string;
  readonly #snaplen: number;
  readonly #nanosPerTick: number;
  readonly #header = new Uint8Array(PKTHDR_SIZE);
  readonly #headerView = new DataView(this.#header.buffer);

  private constructor(dumper: Deno.PointerObject, path: string, snaplen: number, nanosPerTick: number) {
    this.#dumper = dumper;
    this.#path = path;
    this.#snaplen = snaplen;
    this.#nanosPerTick = nanosPerTick;
  }

  /** Creates (or truncates) `path`. `Capture.openDead(linkType)` gives nanosecond stamps. */
  static open(capture: Capture, path: string): PcapWriter {
    const handle = handleOf(capture);
    const dumper = pcap().pcap_dump_open(handle, cString(path));
    if (dumper === null) {
      throw new FatalError(`cannot write ${path}: ${withoutPrefix(lastError(handle), path)}`);
    }
    const nanosPerTick = pcap().pcap_get_tstamp_precision(handle) === PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
    return new PcapWriter(dumper, path, pcap().pcap_snapshot(handle), nanosPerTick);
  }

  /** Appends one packet, cut to the snaplen; `originalLength` defaults to the data's length. */
  write(
    packet: {
      timeSeconds: number;
      timeNanos: number;
      data: Uint8Array<ArrayBuffer>;
      originalLength?: number;
    },
  ): void {
    const dumper = this.#open();
    const data = packet.data.length > this.#snaplen ? packet.data.subarray(0, this.#snaplen) : packet.data;
    const header = this.#headerView;
    writeLong(header, PKTHDR_SECONDS, packet.timeSeconds);
    writeLong(header, PKTHDR_FRACTION, Math.floor(packet.timeNanos / this.#nanosPerTick));
    header.setUint32(PKTHDR_CAPTURED_LENGTH, data.length, true);
    header.setUint32(PKTHDR_ORIGINAL_LENGTH, packet.originalLength ?? packet.data.length, true);
    pcap().pcap_dump(dumper, this.#header, data);
  }

  /** Pushes buffered packets to the file. */
  flush(): void {
    if (pcap().pcap_dump_flush(this.#open()) < 0) {
      throw new FatalError(`cannot write ${this.#path}: ${errnoMessage(lastErrno())}`);
    }
  }

  /** Flushes and closes the file; closing twice is harmless. */
  close(): void {
    if (this.#dumper === null) return;
    pcap().pcap_dump_close(this.#dumper);
    this.#dumper = null;
  }

  #open(): Deno.PointerObject {
    if (this.#dumper === null) throw new Error(`pcap writer for ${this.#path} used after close`);
    return this.#dumper;
  }
}

/** libpcap's version line, e.g. `libpcap version 1.10.3 (with TPACKET_V3)`. */
export function libpcapVersion(): string {
  return readCString(pcap().pcap_lib_version());
}

/**
 * Checks a BPF filter for packets of `linkType` without opening anything: libpcap's error text, or
 * `undefined` when the expression is valid.
 */
export function compileFilter(linkType: number, expression: string): string | undefined {
  const capture = Capture.openDead(linkType);
  try {
    pcap().pcap_freecode(compile(handleOf(capture), expression));
    return undefined;
  } catch (error) {
    if (error instanceof FilterError) return error.reason;
    throw error;
  } finally {
    capture.close();
  }
}

/** A filter libpcap refused; `reason` is libpcap's text alone. */
class FilterError extends FatalError {
  constructor(expression: string, readonly reason: string) {
    super(`bad filter ${JSON.stringify(expression)}: ${reason}`);
  }
}

/** A compiled `struct bpf_program`; the caller must `pcap_freecode` it. */
function compile(handle: Deno.PointerObject, expression: string): Uint8Array<ArrayBuffer> {
  const program = new Uint8Array(BPF_PROGRAM_SIZE);
  if (pcap().pcap_compile(handle, program, cString(expression), 1, PCAP_NETMASK_UNKNOWN) < 0) {
    throw new FilterError(expression, lastError(handle));
  }
  return program;
}

function activationFailure(handle: Deno.PointerObject, status: number): string {
  if (status === PCAP_ERROR_PERM_DENIED || status === PCAP_ERROR_PROMISC_PERM_DENIED) {
    return "permission denied (run as root or grant CAP_NET_RAW)";
  }
  const meaning = readCString(pcap().pcap_statustostr(status));
  if (status === PCAP_ERROR_NO_SUCH_DEVICE) return meaning;
  return lastError(handle) || meaning;
}

function lastError(handle: Deno.PointerObject): string {
  return readCString(pcap().pcap_geterr(handle));
}

/** libpcap often starts file errors with the file name, which our message already names. */
function withoutPrefix(reason: string, path: string): string {
  return reason.startsWith(`${path}: `) ? reason.slice(path.length + 2) : reason;
}

/** A C `long` (64-bit little-endian) read as a number, exact below 2^53. */
/** A pointer libpcap stored in `view` (64-bit, little-endian), as a number: user addresses fit in 53 bits. */
function readAddress(view: DataView): number {
  return view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
}

function readLong(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getInt32(offset + 4, true) * 2 ** 32;
}

function writeLong(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setInt32(offset + 4, Math.floor(value / 2 ** 32), true);
}
