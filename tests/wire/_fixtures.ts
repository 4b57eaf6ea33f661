/**
 * Frames captured on this machine with tcpdump (hex from `tcpdump -xx -r`), the fields tcpdump printed
 * for them, and small helpers shared by the wire tests.
 */

/** Bytes from hex text; whitespace is ignored. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** A seeded PRNG (mulberry32) giving uint32 values, so a failing run replays exactly. */
export function seededUint32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Seeded numbers in [0, 1) from `seededUint32`, for random choices and sizes that replay exactly. */
export function seededRandom(seed: number): () => number {
  const next = seededUint32(seed);
  return () => next() / 2 ** 32;
}

/**
 * `tcpdump -i lo` (DLT_EN10MB), a client SYN:
 * 127.0.0.1.40812 > 127.0.0.1.5733: Flags [S], cksum 0xfe30 (incorrect -> 0x1abd), seq 438402434,
 * win 65495, options [mss 65495,sackOK,TS val 3018404835 ecr 0,nop,wscale 10], length 0;
 * IP tos 0x0, ttl 64, id 53371, flags [DF], length 60. The captured TCP checksum is the partial sum
 * Linux leaves for offload; 0x1abd is the true one.
 */
export const LO_ETHERNET_SYN = hex(`
  0000 0000 0000 0000 0000 0000 0800 4500
  003c d07b 4000 4006 6c3e 7f00 0001 7f00
  0001 9f6c 1665 1a21 7d82 0000 0000 a002
  ffd7 fe30 0000 0204 ffd7 0402 080a b3e9
  33e3 0000 0000 0103 030a`);

/**
 * `tcpdump -i lo`, the client's first data segment:
 * 127.0.0.1.40812 > 127.0.0.1.5733: Flags [P.], cksum 0xfe2d (incorrect -> 0x0df9), seq 1:6, ack 1, win 64,
 * options [nop,nop,TS val 3018404835 ecr 884884481], length 5 ("hello"); IP id 53373, length 57.
 */
export const LO_ETHERNET_DATA = hex(`
  0000 0000 0000 0000 0000 0000 0800 4500
  0039 d07d 4000 4006 6c3f 7f00 0001 7f00
  0001 9f6c 1665 1a21 7d83 1d19 5b87 8018
  0040 fe2d 0000 0101 080a b3e9 33e3 34be
  4401 6865 6c6c 6f`);

/** The same SYN as `LO_ETHERNET_SYN` from `tcpdump -i any -y LINUX_SLL` (ARPHRD 772, packet type host). */
export const ANY_SLL_SYN = hex(`
  0000 0304 0006 0000 0000 0000 0000 0800
  4500 003c d07b 4000 4006 6c3e 7f00 0001
  7f00 0001 9f6c 1665 1a21 7d82 0000 0000
  a002 ffd7 fe30 0000 0204 ffd7 0402 080a
  b3e9 33e3 0000 0000 0103 030a`);

/**
 * `tcpdump -i any -y LINUX_SLL2` inside a lab namespace on a veth (ifindex 2), the client's SYN, "Out":
 * 198.18.99.1.59146 > 198.18.99.2.5734: Flags [S], cksum 0x5257 (incorrect -> 0x8a98), seq 2474456701,
 * win 64240, options [mss 1460,sackOK,TS val 1623083041 ecr 0,nop,wscale 10], length 0; IP id 54059.
 */
export const VETH_SLL2_SYN_OUT = hex(`
  0800 0000 0000 0002 0001 0406 3207 5900
  4b2b 0000 4500 003c d32b 4000 4006 1568
  c612 6301 c612 6302 e70a 1666 937d 367d
  0000 0000 a002 faf0 5257 0000 0204 05b4
  0402 080a 60be 4821 0000 0000 0103 030a`);

/**
 * The server's answer in the same capture, "In":
 * 198.18.99.2.5734 > 198.18.99.1.59146: Flags [S.], cksum 0x5257 (incorrect -> 0xcc8e), seq 3735755783,
 * ack 2474456702, win 65160, options [mss 1460,sackOK,TS val 1519936789 ecr 1623083041,nop,wscale 10].
 */
export const VETH_SLL2_SYNACK_IN = hex(`
  0800 0000 0000 0002 0001 0006 828b d7f7
  8dde 0000 4500 003c 0000 4000 4006 e893
  c612 6302 c612 6301 1666 e70a deab 1c07
  937d 367e a012 fe88 5257 0000 0204 05b4
  0402 080a 5a98 6515 60be 4821 0103 030a`);
