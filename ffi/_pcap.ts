/** The libpcap symbol table and its lazy loader; `libpcap.ts` wraps these into safe calls. */
import { FatalError } from "../src/errors.ts";

/** Size of the error buffers libpcap fills (PCAP_ERRBUF_SIZE). */
export const PCAP_ERRBUF_SIZE = 256;
/** pcap_next_ex: no more packets in the file. */
export const PCAP_ERROR_BREAK = -2;
export const PCAP_ERROR_NO_SUCH_DEVICE = -5;
export const PCAP_ERROR_PERM_DENIED = -8;
export const PCAP_ERROR_PROMISC_PERM_DENIED = -11;
export const PCAP_TSTAMP_PRECISION_MICRO = 0;
export const PCAP_TSTAMP_PRECISION_NANO = 1;
/** pcap_compile's netmask when unknown: only `ip broadcast` filters need it. */
export const PCAP_NETMASK_UNKNOWN = 0xffffffff;
export const PCAP_D_INOUT = 0;
export const PCAP_D_IN = 1;
export const PCAP_D_OUT = 2;

/** struct bpf_program on LP64: u_int bf_len, padding, struct bpf_insn *bf_insns. */
export const BPF_PROGRAM_SIZE = 16;
/** struct pcap_stat: u_int ps_recv, ps_drop, ps_ifdrop. */
export const PCAP_STAT_SIZE = 12;
export const PCAP_STAT_RECEIVED = 0;
export const PCAP_STAT_DROPPED = 4;
/** struct pcap_pkthdr on LP64: struct timeval { long tv_sec; long tv_usec }, u32 caplen, u32 len. */
export const PKTHDR_SIZE = 24;
export const PKTHDR_SECONDS = 0;
/** Microseconds, or nanoseconds when the handle's precision is nano. */
export const PKTHDR_FRACTION = 8;
export const PKTHDR_CAPTURED_LENGTH = 16;
export const PKTHDR_ORIGINAL_LENGTH = 20;

const SYMBOLS = {
  pcap_lib_version: { parameters: [], result: "pointer" },
  pcap_statustostr: { parameters: ["i32"], result: "pointer" },
  pcap_geterr: { parameters: ["pointer"], result: "pointer" },
  pcap_create: { parameters: ["buffer", "buffer"], result: "pointer" },
  pcap_set_snaplen: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_immediate_mode: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_buffer_size: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_promisc: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_timeout: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_tstamp_precision: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_get_tstamp_precision: { parameters: ["pointer"], result: "i32" },
  pcap_activate: { parameters: ["pointer"], result: "i32" },
  pcap_setdirection: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_setnonblock: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  pcap_open_offline_with_tstamp_precision: { parameters: ["buffer", "u32", "buffer"], result: "pointer" },
  pcap_open_dead_with_tstamp_precision: { parameters: ["i32", "i32", "u32"], result: "pointer" },
  pcap_datalink: { parameters: ["pointer"], result: "i32" },
  pcap_snapshot: { parameters: ["pointer"], result: "i32" },
  pcap_compile: { parameters: ["pointer", "buffer", "buffer", "i32", "u32"], result: "i32" },
  pcap_setfilter: { parameters: ["pointer", "buffer"], result: "i32" },
  pcap_freecode: { parameters: ["buffer"], result: "void" },
  pcap_next_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  pcap_get_selectable_fd: { parameters: ["pointer"], result: "i32" },
  pcap_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  pcap_inject: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  pcap_close: { parameters: ["pointer"], result: "void" },
  pcap_dump_open: { parameters: ["pointer", "buffer"], result: "pointer" },
  pcap_dump: { parameters: ["pointer", "buffer", "buffer"], result: "void" },
  pcap_dump_flush: { parameters: ["pointer"], result: "i32" },
  pcap_dump_close: { parameters: ["pointer"], result: "void" },
} as const;

/** The libpcap functions, as Deno calls them. */
export type Pcap = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Sonames tried in order: the runtime package's, then the development symlink. */
const SONAMES = ["libpcap.so.0.8", "libpcap.so"];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/** libpcap, loaded on first use so commands that never capture run without it. */
export function pcap(): Pcap {
  library ??= load();
  return library.symbols;
}

function load(): Deno.DynamicLibrary<typeof SYMBOLS> {
  for (const soname of SONAMES) {
    try {
      return Deno.dlopen(soname, SYMBOLS);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
    }
  }
  throw new FatalError("libpcap is not installed: apt-get install libpcap0.8");
}
