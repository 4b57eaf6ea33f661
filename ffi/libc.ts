/**
 * The few libc calls tcpshadow needs: raw IP sockets to send rewritten packets (and `sendmmsg` on
 * libpcap's packet socket for link-layer batches), and `poll` run off the JS thread so a capture can
 * wait for packets without stalling the event loop; stream sockets for `copy --connect`, and io_uring to
 * make many of their sends in one system call; and a dump of the kernel's tables over rtnetlink (IPv6's
 * neighbour table has no file under /proc).
 */
import { FatalError } from "../src/errors.ts";
import { cString, readCString, size } from "./_c.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_RAW = 3;
/** Sends fail with EAGAIN instead of blocking the JS thread when the socket buffer is full. */
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
/** With IPPROTO_RAW the kernel takes our IP header as is (IP_HDRINCL, and its IPv6 analogue). */
const IPPROTO_RAW = 255;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
/** Like SO_SNDBUF but may exceed net.core.wmem_max; needs CAP_NET_ADMIN. */
const SO_SNDBUFFORCE = 32;

const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SO_ERROR = 4;
const SO_LINGER = 13;
const SHUT_WR = 1;
/** ioctl(2) on a TCP socket: bytes in its send queue, unsent or unacknowledged (tcp(7)). */
const SIOCOUTQ = 0x5411n;
/** send(2) on a connection the peer reset must fail with EPIPE, not kill the process with SIGPIPE. */
const MSG_NOSIGNAL = 0x4000;
/** recv(2) on a TCP socket takes the bytes and drops them, copying nothing out (tcp(7)). */
const MSG_TRUNC = 0x20;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const POLLOUT = 4;
const EINPROGRESS = 115;
/** Bytes handed to send(2) or asked of recv(2) at once (`size` keeps one BigInt per length up to it). */
const MAX_IO = 65536;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const READ_CHUNK = 64 * 1024;

const EPERM = 1;
const ENOENT = 2;
const EAGAIN = 11;
const EACCES = 13;
const ENOBUFS = 105;

// struct sockaddr_in: sa_family u16 (host order), port u16, address 4 bytes, 8 bytes of zero.
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN_ADDRESS = 4;
// struct sockaddr_in6: sa_family u16, port u16, flowinfo u32, address 16 bytes, scope id u32.
const SOCKADDR_IN6_SIZE = 28;
const SOCKADDR_IN6_ADDRESS = 8;

// struct mmsghdr on LP64: struct msghdr { msg_name ptr, msg_namelen u32 (+4 pad), msg_iov ptr,
// msg_iovlen size_t, msg_control ptr, msg_controllen size_t, msg_flags i32 (+4 pad) }, msg_len u32 (+4 pad).
const MMSGHDR_SIZE = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
// struct iovec: iov_base ptr, iov_len size_t.
const IOVEC_SIZE = 16;
const IOV_BASE = 0;
const IOV_LEN = 8;

// struct pollfd: fd i32, events i16, revents i16.
const POLLFD_SIZE = 8;
const POLLFD_EVENTS = 4;
const POLLFD_REVENTS = 6;
const POLLIN = 1;
/** The peer shut its writing side (its FIN came): poll(2) says so even while bytes before it wait. */
const POLLRDHUP = 0x2000;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // Variadic in C; its one argument here is a pointer, passed as any other (x86-64 and AArch64 alike).
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // ssize_t read as its low 32 bits (still -1 on error): an "isize" result would be a BigInt per send.
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  sendmmsg: { parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  usleep: { parameters: ["u32"], result: "i32" },
  /** poll(2) on the calling thread, for a look that does not wait (timeout 0). */
  poll_now: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  // io_uring has no libc wrappers: syscall(2) with io_uring_setup's and io_uring_enter's numbers.
  io_uring_setup: { name: "syscall", parameters: ["i64", "u32", "buffer"], result: "i32" },
  io_uring_enter: {
    name: "syscall",
    parameters: ["i64", "i32", "u32", "u32", "u32", "pointer", "usize"],
    result: "i32",
  },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  // The source as an address (a number), the result unread: no pointer object either way, per frame.
  memcpy: { parameters: ["buffer", "usize", "usize"], result: "void" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  library ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return library.symbols;
}

/**
 * The JS thread's errno. Synchronous FFI calls run on the JS thread, so read it right after the failing
 * call, before another call can overwrite it.
 */
export function lastErrno(): number {
  errnoView ??= new Deno.UnsafePointerView(libc().__errno_location()!);
  return errnoView.getInt32(0);
}

/** libc's text for an errno value, e.g. `Operation not permitted` for 1. */
export function errnoMessage(errno: number): string {
  return readCString(libc().strerror(errno));
}

/**
 * The text of a kernel file under /proc or /sys (`/proc/net/arp`, `/sys/class/net/eth0/address`), or
 * `undefined` if there is no such file. Deno lets only `--allow-all` read these; libc reads them with
 * the permission the process has anyway (`--allow-ffi`). Other failures throw `FatalError`.
 */
export function readKernelFile(path: string): string | undefined {
  if (!path.startsWith("/proc/") && !path.startsWith("/sys/")) {
    throw new TypeError(`${path} is not a kernel file under /proc or /sys`);
  }
  const fd = libc().open(cString(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const errno = lastErrno();
    if (errno === ENOENT) return undefined;
    throw new FatalError(`cannot read ${path}: ${errnoMessage(errno)}`);
  }
  try {
    const chunks: Uint8Array[] = [];
    for (;;) {
      const chunk = new Uint8Array(READ_CHUNK);
      const count = Number(libc().read(fd, chunk, size(chunk.length)));
      if (count < 0) throw new FatalError(`cannot read ${path}: ${errnoMessage(lastErrno())}`);
      if (count === 0) break;
      chunks.push(chunk.subarray(0, count));
    }
    const decoder = new TextDecoder();
    return chunks.map((chunk, i) => decoder.decode(chunk, { stream: i < chunks.length - 1 })).join("");
  } finally {
    libc().close(fd);
  }
}

/** Copies `destination.length` bytes from the C memory at `address` (a pointer read as a number) into `destination`. */
export function copyFromAddress(destination: Uint8Array<ArrayBuffer>, address: number): void {
  // Deno takes a safe-integer number for a 64-bit parameter too, though its types say bigint (a BigInt a call).
  libc().memcpy(destination, address as unknown as bigint, size(destination.length));
}

/**
 * A raw IP socket that sends whole IP packets (header included) as built by the caller. Non-blocking: a
 * full send buffer is reported by `send` returning `false`, never by waiting.
 */
export class RawSocket {
  #fd: number;
  readonly #family: 4 | 6;
  /** The destination sockaddr, reused by every send; only its address bytes change. */
  readonly #sockaddr: Uint8Array<ArrayBuffer>;
  readonly #addressOffset: number;

  private constructor(fd: number, family: 4 | 6) {
    this.#fd = fd;
    this.#family = family;
    this.#sockaddr = new Uint8Array(family === 4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE);
    new DataView(this.#sockaddr.buffer).setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
    this.#addressOffset = family === 4 ? SOCKADDR_IN_ADDRESS : SOCKADDR_IN6_ADDRESS;
  }

  /** Opens a raw IPv4 or IPv6 socket; needs root or CAP_NET_RAW. */
  static open(family: 4 | 6): RawSocket {
    const domain = family === 4 ? AF_INET : AF_INET6;
    const fd = libc().socket(domain, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) {
      const errno = lastErrno();
      const hint = errno === EPERM || errno === EACCES ? " (run as root or grant CAP_NET_RAW)" : "";
      throw new FatalError(`cannot open a raw socket: ${errnoMessage(errno)}${hint}`);
    }
    return new RawSocket(fd, family);
  }

  /**
   * Sends one IP packet to `destination` (4 or 16 address bytes; the kernel routes by it, the packet's
   * own header is sent as is). Returns `false` when the packet was not sent but the next one may be
   * (`droppedBySend`) so the caller can count the drop; any other failure throws `FatalError`.
   */
  send(packet: Uint8Array<ArrayBuffer>, destination: Uint8Array): boolean {
    if (destination.length !== (this.#family === 4 ? 4 : 16)) {
      throw new TypeError(`IPv${this.#family} destination must be ${this.#family === 4 ? 4 : 16} bytes`);
    }
    this.#sockaddr.set(destination, this.#addressOffset);
    const sent = libc().sendto(
      this.#openFd(),
      packet,
      size(packet.length),
      0,
      this.#sockaddr,
      this.#sockaddr.length,
    );
    if (sent >= 0) return true;
    const errno = lastErrno();
    if (droppedBySend(errno)) return false;
    throw new FatalError(`cannot send a ${packet.length}-byte packet: ${errnoMessage(errno)}`);
  }

  /**
   * Sends the packets queued in `batch` with as few sendmmsg(2) calls as the kernel allows and empties
   * it; returns how many were dropped (`droppedBySend`: counted, not retried). Any other
   * failure throws `FatalError`. One system call per batch instead of one per packet: on a VM the call
   * itself costs more than the kernel's work on a small packet.
   */
  sendBatch(batch: PacketBatch): number {
    if (batch.family !== this.#family) {
      throw new TypeError(`IPv${batch.family} batch on an IPv${this.#family} socket`);
    }
    return sendBatchOn(this.#openFd(), batch);
  }

  /**
   * Binds the socket to `local`, an address of this host (4 or 16 bytes). Sent packets keep the source
   * their header has; the kernel then looks their route up from `local` instead of selecting a source
   * address for each (which an IPv6 send otherwise does, per packet). Returns the errno when the kernel
   * refuses (`local` is not, or not yet, this host's: a tentative IPv6 address), else 0.
   */
  bind(local: Uint8Array): number {
    const sockaddr = socketAddress(local, 0);
    if (sockaddr.length !== this.#sockaddr.length) {
      throw new TypeError(`a ${local.length}-byte local address for an IPv${this.#family} socket`);
    }
    return libc().bind(this.#openFd(), sockaddr, sockaddr.length) === 0 ? 0 : lastErrno();
  }

  /** Sets the socket's send buffer size, beyond net.core.wmem_max when privileged. */
  setSendBuffer(bytes: number): void {
    const value = new Uint8Array(4);
    new DataView(value.buffer).setInt32(0, bytes, true);
    const fd = this.#openFd();
    if (libc().setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, value, value.length) === 0) return;
    if (lastErrno() === EPERM && libc().setsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, value.length) === 0) {
      return;
    }
    throw new FatalError(
      `cannot set the raw socket's send buffer to ${bytes} bytes: ${errnoMessage(lastErrno())}`,
    );
  }

  /** Closes the socket; closing twice is harmless. */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }

  #openFd(): number {
    if (this.#fd < 0) throw new Error("raw socket used after close");
    return this.#fd;
  }
}

/**
 * Whether a failed send lost only that packet: the kernel had no room for it (ENOBUFS, EAGAIN), or a
 * firewall rule of this host dropped it (EPERM, netfilter's answer to a local packet it drops).
 */
function droppedBySend(errno: number): boolean {
  return errno === ENOBUFS || errno === EAGAIN || errno === EPERM;
}

/**
 * Sends `batch` on socket `fd` with as few sendmmsg(2) calls as the kernel allows and empties it; returns
 * how many packets were dropped (`droppedBySend`: counted, not retried). Any other failure throws
 * `FatalError`.
 */
export function sendBatchOn(fd: number, batch: PacketBatch): number {
  const count = batch.count;
  let dropped = 0;
  for (let done = 0; done < count;) {
    const sent = libc().sendmmsg(fd, batch.headersAt(done), count - done, 0);
    if (sent > 0) {
      done += sent;
      continue;
    }
    const errno = lastErrno();
    if (!droppedBySend(errno)) {
      batch.clear();
      throw new FatalError(`cannot send a ${batch.lengthAt(done)}-byte packet: ${errnoMessage(errno)}`);
    }
    dropped++;
    done++;
  }
  batch.clear();
  return dropped;
}

/**
 * Room for up to `capacity` IP packets of at most `slotSize` bytes each, built in place and sent
 * together by `RawSocket.sendBatch`, or link-layer frames (`family` `"link"`, no destination: the
 * socket is bound to its interface) sent by `Capture.injectBatch`. The C structures (`mmsghdr`,
 * `iovec`, `sockaddr`) are laid out once; queueing a packet writes only its length and destination.
 */
export class PacketBatch {
  /** Packets queued. */
  count = 0;

  readonly #slots: Uint8Array<ArrayBuffer>[];
  readonly #headers: Uint8Array<ArrayBuffer>;
  readonly #headerBase: Deno.PointerObject;
  readonly #iovecs: DataView;
  readonly #addresses: Uint8Array<ArrayBuffer>;
  readonly #sockaddrSize: number;
  readonly #addressOffset: number;

  constructor(readonly family: 4 | 6 | "link", readonly capacity: number, readonly slotSize: number) {
    const storage = new Uint8Array(capacity * slotSize);
    this.#slots = Array.from(
      { length: capacity },
      (_, i) => storage.subarray(i * slotSize, (i + 1) * slotSize),
    );
    this.#sockaddrSize = family === "link" ? 0 : family === 4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE;
    this.#addressOffset = family === 4 ? SOCKADDR_IN_ADDRESS : SOCKADDR_IN6_ADDRESS;
    this.#addresses = new Uint8Array(Math.max(1, capacity * this.#sockaddrSize));
    const iovecBytes = new Uint8Array(capacity * IOVEC_SIZE);
    this.#iovecs = new DataView(iovecBytes.buffer);
    this.#headers = new Uint8Array(capacity * MMSGHDR_SIZE);
    const headers = new DataView(this.#headers.buffer);
    const addressView = new DataView(this.#addresses.buffer);
    const storageAt = pointerValue(storage);
    const addressesAt = pointerValue(this.#addresses);
    const iovecsAt = pointerValue(iovecBytes);
    // The arrays above stay alive with the batch, and V8 never moves an ArrayBuffer's backing store.
    for (let i = 0; i < capacity; i++) {
      this.#iovecs.setBigUint64(i * IOVEC_SIZE + IOV_BASE, storageAt + BigInt(i * slotSize), true);
      const header = i * MMSGHDR_SIZE;
      if (family !== "link") {
        addressView.setUint16(i * this.#sockaddrSize, family === 4 ? AF_INET : AF_INET6, true);
        headers.setBigUint64(header + MSG_NAME, addressesAt + BigInt(i * this.#sockaddrSize), true);
        headers.setUint32(header + MSG_NAMELEN, this.#sockaddrSize, true);
      }
      headers.setBigUint64(header + MSG_IOV, iovecsAt + BigInt(i * IOVEC_SIZE), true);
      headers.setBigUint64(header + MSG_IOVLEN, 1n, true);
    }
    this.#headerBase = Deno.UnsafePointer.of(this.#headers)!;
  }

  /** Whether no more packets fit. */
  get full(): boolean {
    return this.count === this.capacity;
  }

  /** Where to build the next packet (`slotSize` bytes); `push` then queues it. */
  nextSlot(): Uint8Array<ArrayBuffer> {
    if (this.full) throw new RangeError("packet batch is full");
    return this.#slots[this.count];
  }

  /**
   * Queues the `length`-byte packet built in `nextSlot()` for `destination` (4 or 16 address bytes;
   * none for link-layer frames).
   */
  push(length: number, destination?: Uint8Array): void {
    if (length > this.slotSize) {
      throw new RangeError(`a ${length}-byte packet does not fit a ${this.slotSize}-byte slot`);
    }
    const i = this.count;
    if (destination !== undefined) {
      this.#addresses.set(destination, i * this.#sockaddrSize + this.#addressOffset);
    }
    // The high half of the size_t stays zero: no BigInt per packet.
    this.#iovecs.setUint32(i * IOVEC_SIZE + IOV_LEN, length, true);
    this.count = i + 1;
  }

  /** Empties the batch. */
  clear(): void {
    this.count = 0;
  }

  /** The `mmsghdr` array from packet `index` on (for `sendBatch`). */
  headersAt(index: number): Deno.PointerObject {
    return index === 0
      ? this.#headerBase
      : Deno.UnsafePointer.offset(this.#headerBase, index * MMSGHDR_SIZE)!;
  }

  /** Length of queued packet `index` (for messages). */
  lengthAt(index: number): number {
    return this.#iovecs.getUint32(index * IOVEC_SIZE + IOV_LEN, true);
  }
}

function pointerValue(bytes: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
}

/**
 * Waits for one file descriptor to become readable with `poll(2)` on a worker thread, so the JS event
 * loop keeps running meanwhile. One wait at a time: its `pollfd` buffer is reused.
 */
export class FdPoller {
  readonly #pollfd = new Uint8Array(POLLFD_SIZE);
  #pending: Promise<boolean> | undefined;

  /** Prepares to wait on `fd`. */
  constructor(fd: number) {
    const view = new DataView(this.#pollfd.buffer);
    view.setInt32(0, fd, true);
    view.setInt16(POLLFD_EVENTS, POLLIN, true);
  }

  /**
   * Resolves `true` once the fd is readable (or in error, which the next read reports), `false` after
   * `timeoutMs` or when poll was interrupted. While a wait is pending, further calls share it.
   */
  waitReadable(timeoutMs: number): Promise<boolean> {
    this.#pending ??= libc().poll(this.#pollfd, size(1), Math.max(0, Math.floor(timeoutMs)))
      .then((ready) => ready > 0)
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  /** Resolves when no wait is in flight, so the fd can be closed without poll seeing it vanish. */
  async idle(): Promise<void> {
    if (this.#pending !== undefined) await this.#pending.catch(() => {});
  }
}

/**
 * The `sockaddr` of `address` and `port`: a `sockaddr_in` for 4 address bytes, a `sockaddr_in6` (flow
 * info and scope id 0) for 16. Any other length is a `TypeError`.
 */
export function socketAddress(address: Uint8Array, port: number): Uint8Array<ArrayBuffer> {
  if (address.length !== 4 && address.length !== 16) {
    throw new TypeError(`an IP address is 4 or 16 bytes, not ${address.length}`);
  }
  const ipv4 = address.length === 4;
  const sockaddr = new Uint8Array(ipv4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE);
  const view = new DataView(sockaddr.buffer);
  view.setUint16(0, ipv4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port);
  sockaddr.set(address, ipv4 ? SOCKADDR_IN_ADDRESS : SOCKADDR_IN6_ADDRESS);
  return sockaddr;
}

/**
 * The address of this host the kernel sends from toward `destination` (4 or 16 bytes), by its own route
 * and source address selection; `undefined` when it has none (no route, no address of that family).
 * Asked of a UDP socket connected to `destination`, then closed: a UDP connect sends nothing.
 */
export function localAddressToward(destination: Uint8Array): Uint8Array | undefined {
  const to = socketAddress(destination, 9);
  const fd = libc().socket(destination.length === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    if (libc().connect(fd, to, to.length) < 0) return undefined;
    const own = new Uint8Array(to.length);
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, own.length, true);
    if (libc().getsockname(fd, own, length) < 0) return undefined;
    const at = destination.length === 4 ? SOCKADDR_IN_ADDRESS : SOCKADDR_IN6_ADDRESS;
    return own.slice(at, at + destination.length);
  } finally {
    libc().close(fd);
  }
}

const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;
// struct nlmsghdr: nlmsg_len u32, nlmsg_type u16, nlmsg_flags u16, nlmsg_seq u32, nlmsg_pid u32.
const NLMSG_HEADER_SIZE = 16;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NETLINK_RECEIVE = 65536;

/**
 * Asks the kernel's routing netlink (rtnetlink) for a dump of `type` (RTM_GETNEIGH, ...) with `body` (the
 * request's family header) and returns every answer message's body (after its `nlmsghdr`), with its type.
 * Blocking, but the kernel answers a dump of its own tables at once; meant for start-up, not a hot path.
 * A failure throws `FatalError`.
 */
export function routeNetlinkDump(type: number, body: Uint8Array): { type: number; body: Uint8Array }[] {
  const fd = libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw new FatalError(`cannot open a netlink socket: ${errnoMessage(lastErrno())}`);
  try {
    const request = new Uint8Array(NLMSG_HEADER_SIZE + body.length);
    const header = new DataView(request.buffer);
    header.setUint32(0, request.length, true);
    header.setUint16(4, type, true);
    header.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
    header.setUint32(8, 1, true);
    request.set(body, NLMSG_HEADER_SIZE);
    // Unbound and unconnected, a netlink socket sends to the kernel.
    if (libc().send(fd, request, size(request.length), 0) < 0) {
      throw new FatalError(`cannot ask the kernel over netlink: ${errnoMessage(lastErrno())}`);
    }
    const messages: { type: number; body: Uint8Array }[] = [];
    const buffer = new Uint8Array(NETLINK_RECEIVE);
    for (;;) {
      const received = libc().recv(fd, buffer, size(buffer.length), 0);
      if (received < 0) throw new FatalError(`cannot read netlink: ${errnoMessage(lastErrno())}`);
      const view = new DataView(buffer.buffer, 0, received);
      for (let at = 0; at + NLMSG_HEADER_SIZE <= received;) {
        const length = view.getUint32(at, true);
        const messageType = view.getUint16(at + 4, true);
        if (length < NLMSG_HEADER_SIZE || at + length > received) {
          throw new FatalError(`netlink message of ${length} bytes at ${at} of ${received}`);
        }
        if (messageType === NLMSG_DONE) return messages;
        if (messageType === NLMSG_ERROR) {
          const errno = -view.getInt32(at + NLMSG_HEADER_SIZE, true);
          throw new FatalError(`the kernel refused a netlink dump: ${errnoMessage(errno)}`);
        }
        messages.push({ type: messageType, body: buffer.slice(at + NLMSG_HEADER_SIZE, at + length) });
        at += (length + 3) & ~3;
      }
    }
  } finally {
    libc().close(fd);
  }
}

/** Where ioctl(2) puts its int (one call at a time: JS is single-threaded). */
const ioctlValue = new Uint8Array(4);

/**
 * An ordinary non-blocking TCP connection over libc, for `copy --connect`: connect, send and receive
 * without waiting (a `SocketPoller` says when to go on), half-close, and the abortive close (RST) that
 * `Deno.connect` does not offer. IPv4 or IPv6, by the target address's length.
 */
export class StreamSocket {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * A socket for a connection to `to` (a `socketAddress`, IPv4 or IPv6; from `from`, one of the same
   * family, when given: socket addresses made once by the caller, not per connection), not connecting yet:
   * `connectDescriptor` starts it, on any thread, and the connection is open once the poller says the socket
   * is writable and `connectError` is 0. Returns the errno if socket(2) or bind(2) failed.
   */
  static open(to: Uint8Array<ArrayBuffer>, from?: Uint8Array<ArrayBuffer>): StreamSocket | number {
    if (from !== undefined && from.length !== to.length) {
      throw new TypeError(`a ${from.length}-byte local socket address for a ${to.length}-byte target's`);
    }
    const domain = to.length === SOCKADDR_IN_SIZE ? AF_INET : AF_INET6;
    const fd = libc().socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return lastErrno();
    if (from !== undefined && libc().bind(fd, from, from.length) < 0) {
      const errno = lastErrno();
      libc().close(fd);
      return errno;
    }
    return new StreamSocket(fd);
  }

  /** The descriptor, for the poller. */
  get fd(): number {
    return this.#fd;
  }

  /** After the poller found the connecting socket writable: 0 if it is open, else why not (errno). */
  connectError(): number {
    const value = new Uint8Array(4);
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, 4, true);
    if (libc().getsockopt(this.#fd, SOL_SOCKET, SO_ERROR, value, length) < 0) return lastErrno();
    return new DataView(value.buffer).getInt32(0, true);
  }

  /**
   * Sends what the kernel takes now of the first `length` bytes of `bytes` (at most 64 KiB at once): how
   * many (0: no room, EAGAIN), or the errno negated. A number, not an object: one call per request.
   */
  send(bytes: Uint8Array<ArrayBuffer>, length = bytes.length): number {
    const sent = libc().send(this.#fd, bytes, size(Math.min(length, bytes.length, MAX_IO)), MSG_NOSIGNAL);
    if (sent >= 0) return sent;
    const errno = lastErrno();
    return errno === EAGAIN ? 0 : -errno;
  }

  /**
   * Receives into `buffer` (at most 64 KiB at once): how many bytes, 0 at the end of the stream, or the
   * errno negated (`-EAGAIN`: none wait). With `discard` the kernel drops the bytes it takes without
   * copying them out (MSG_TRUNC), for a caller that only counts them; `buffer` is then left as it was.
   */
  receive(buffer: Uint8Array<ArrayBuffer>, discard = false): number {
    const length = Math.min(buffer.length, MAX_IO);
    const received = libc().recv(this.#fd, buffer, size(length), discard ? MSG_TRUNC : 0);
    return received >= 0 ? received : -lastErrno();
  }

  /**
   * Bytes sent that the peer has not acknowledged yet, or not sent yet (SIOCOUTQ); 0 once closed.
   */
  unacknowledged(): number {
    if (this.#fd < 0 || libc().ioctl(this.#fd, SIOCOUTQ, ioctlValue) < 0) return 0;
    return ioctlValue[0] | ioctlValue[1] << 8 | ioctlValue[2] << 16 | ioctlValue[3] << 24;
  }

  /** Shuts the writing side: a FIN after what was sent. */
  shutdownWrite(): void {
    libc().shutdown(this.#fd, SHUT_WR);
  }

  /** Closes abortively: a RST, whatever is unsent or unread (SO_LINGER on, 0 s). */
  abort(): void {
    const linger = new Uint8Array(8);
    new DataView(linger.buffer).setInt32(0, 1, true);
    libc().setsockopt(this.#fd, SOL_SOCKET, SO_LINGER, linger, linger.length);
    this.close();
  }

  /** Closes: what is unsent still goes, then a FIN. Closing twice is harmless. */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }

  /** Closes as `close` does, in `ring`'s next batch (its result of no interest): closed for this object now. */
  closeIn(ring: SocketRing): void {
    if (this.#fd < 0) return;
    ring.queueClose(this.#fd);
    this.#fd = -1;
  }
}

/**
 * Starts connecting non-blocking socket `fd` (a `StreamSocket.open`'s) to `to` (a `socketAddress`): 0 once
 * the SYN is on its way (or the connection open), else the errno (the socket is left to its owner). Takes
 * only numbers and bytes, so a worker thread can make the call for the socket's owner.
 */
export function connectDescriptor(fd: number, to: Uint8Array): number {
  if (libc().connect(fd, to as Uint8Array<ArrayBuffer>, to.length) === 0) return 0;
  const errno = lastErrno();
  return errno === EINPROGRESS ? 0 : errno;
}

/** Adds 1 to eventfd `fd`'s counter, which makes it readable: from any thread. */
export function signalEventFd(fd: number): void {
  libc().write(fd, EVENTFD_ONE, size(8));
}

const EVENTFD_ONE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/**
 * Waits for many sockets at once: one poll(2) off the JS thread per batch of events, over every
 * descriptor watched (or, `check`, one on the JS thread, which waits briefly or not at all). A wait in
 * flight is woken (an eventfd) when `wake` is called, so that sockets added or wanting to write meanwhile
 * are watched at once.
 */
export class SocketPoller {
  readonly #wakeFd: number;
  readonly #wakeBytes = new Uint8Array(8);
  #waiting = false;
  #woken = false;
  /** Descriptors whose readiness also ends a look (`check`), never reported: see `endLooksOn`. */
  #lookEnders: readonly number[] = [];
  /** The `pollfd` arrays of `wait` and `check`, kept and grown: a wait's stays the kernel's until it ends. */
  readonly #waitFds = new PollFds();
  readonly #checkFds = new PollFds();

  constructor() {
    this.#wakeFd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#wakeFd < 0) throw new FatalError(`cannot make an eventfd: ${errnoMessage(lastErrno())}`);
  }

  /**
   * Waits up to `timeoutMs` for any of `fds` (with `writable[i]`: also for room to write) and fills
   * `ready[i]` with what happened: `POLL_READ`, `POLL_WRITE`, `POLL_END` (the peer's FIN came: what is
   * left to read ends with it), `POLL_ERROR` bits.
   */
  async wait(fds: readonly number[], writable: readonly boolean[], ready: number[], timeoutMs: number) {
    const pollfds = this.#waitFds.fill(fds, writable, this.#wakeFd, []);
    this.#waiting = true;
    this.#woken = false;
    try {
      await libc().poll(pollfds.bytes, size(fds.length + 1), Math.max(0, Math.floor(timeoutMs)));
    } finally {
      this.#waiting = false;
    }
    this.#readyOf(pollfds, fds.length, ready);
  }

  /**
   * What `wait` would report, found on the calling thread, waiting there up to `timeoutMs` (0: not at
   * all) or until a descriptor of `endLooksOn`'s is ready: no hand-off to a worker thread and back, for a
   * caller that expects news soon. Returns how many of `fds` had some.
   */
  check(fds: readonly number[], writable: readonly boolean[], ready: number[], timeoutMs = 0): number {
    const pollfds = this.#checkFds.fill(fds, writable, this.#wakeFd, this.#lookEnders);
    const entries = fds.length + 1 + this.#lookEnders.length;
    const count = libc().poll_now(pollfds.bytes, size(entries), Math.max(0, Math.floor(timeoutMs)));
    return count <= 0 ? 0 : this.#readyOf(pollfds, fds.length, ready);
  }

  /**
   * Sleeps `microseconds` on the calling thread, watching nothing: what becomes ready meanwhile is there
   * for the next `check` at once, gathered into one wake of the thread instead of one each.
   */
  pause(microseconds: number): void {
    libc().usleep(Math.max(0, Math.floor(microseconds)));
  }

  /**
   * Has a look (`check`) end as soon as one of `fds` is readable (the live capture's, whose own loop reads
   * them): the calling thread then does not sit in poll(2) while other work waits for it.
   */
  endLooksOn(fds: readonly number[]): void {
    this.#lookEnders = [...fds];
  }

  /** Fills `ready` from a poll's `pollfds` (and takes a wake that came); returns how many had news. */
  #readyOf(pollfds: PollFds, count: number, ready: number[]): number {
    const view = pollfds.view;
    ready.length = count;
    let news = 0;
    for (let i = 0; i < count; i++) {
      const revents = view.getInt16(i * POLLFD_SIZE + POLLFD_REVENTS, true);
      ready[i] = (revents & POLLIN ? POLL_READ : 0) | (revents & POLLOUT ? POLL_WRITE : 0) |
        (revents & POLLRDHUP ? POLL_END : 0) | (revents & ~(POLLIN | POLLOUT | POLLRDHUP) ? POLL_ERROR : 0);
      if (revents !== 0) news++;
    }
    if (view.getInt16(count * POLLFD_SIZE + POLLFD_REVENTS, true) !== 0) {
      libc().read(this.#wakeFd, this.#wakeBytes, size(8));
    }
    return news;
  }

  /** Ends a wait in flight (once per wait), so the caller's next `wait` watches what changed. */
  wake(): void {
    if (!this.#waiting || this.#woken) return;
    this.#woken = true;
    signalEventFd(this.#wakeFd);
  }

  /**
   * The eventfd whose signal (`signalEventFd`, from another thread too) ends a wait or a look in flight,
   * or makes the next one end at once.
   */
  get wakeFd(): number {
    return this.#wakeFd;
  }

  close(): void {
    libc().close(this.#wakeFd);
  }
}

/** A `pollfd` array, made again only when more descriptors than ever before are watched. */
class PollFds {
  bytes = new Uint8Array(0);
  view = new DataView(this.bytes.buffer);

  /** Writes `fds` (with `writable[i]`: also POLLOUT), then `wakeFd`, then `enders` (POLLIN each). */
  fill(
    fds: readonly number[],
    writable: readonly boolean[],
    wakeFd: number,
    enders: readonly number[],
  ): this {
    const length = (fds.length + 1 + enders.length) * POLLFD_SIZE;
    if (this.bytes.length < length) {
      this.bytes = new Uint8Array(Math.max(length, 2 * this.bytes.length));
      this.view = new DataView(this.bytes.buffer);
    }
    const view = this.view;
    for (let i = 0; i < fds.length; i++) {
      view.setInt32(i * POLLFD_SIZE, fds[i], true);
      view.setInt16(i * POLLFD_SIZE + POLLFD_EVENTS, POLLIN | POLLRDHUP | (writable[i] ? POLLOUT : 0), true);
    }
    for (let j = 0; j <= enders.length; j++) {
      const at = (fds.length + j) * POLLFD_SIZE;
      view.setInt32(at, j === 0 ? wakeFd : enders[j - 1], true);
      view.setInt16(at + POLLFD_EVENTS, POLLIN, true);
    }
    return this;
  }
}

/** `SocketPoller.wait`'s bits. */
export const POLL_READ = 1;
export const POLL_WRITE = 2;
export const POLL_ERROR = 4;
export const POLL_END = 8;

// io_uring (x86-64 system call numbers; struct io_uring_params and its ring offsets, io_uring_sqe and
// io_uring_cqe as in <linux/io_uring.h>).
const SYS_IO_URING_SETUP = 425n;
const SYS_IO_URING_ENTER = 426n;
const IORING_ENTER_GETEVENTS = 1;
const IORING_FEAT_SINGLE_MMAP = 1;
const IORING_OFF_SQES = 0x10000000n;
const IORING_OP_CLOSE = 19;
const IORING_OP_SEND = 26;
const IORING_OP_RECV = 27;
const IO_URING_PARAMS_SIZE = 120;
const PARAMS_SQ_ENTRIES = 0;
const PARAMS_CQ_ENTRIES = 4;
const PARAMS_FEATURES = 20;
const PARAMS_SQ_OFF = 40;
const PARAMS_CQ_OFF = 80;
const SQ_OFF_HEAD = 0;
const SQ_OFF_TAIL = 4;
const SQ_OFF_RING_MASK = 8;
const SQ_OFF_ARRAY = 24;
const CQ_OFF_HEAD = 0;
const CQ_OFF_TAIL = 4;
const CQ_OFF_RING_MASK = 8;
const CQ_OFF_CQES = 20;
const SQE_SIZE = 64;
const SQE_OPCODE = 0;
const SQE_FD = 4;
const SQE_ADDR = 16;
const SQE_LEN = 24;
const SQE_MSG_FLAGS = 28;
const SQE_USER_DATA = 32;
const CQE_SIZE = 16;
const CQE_USER_DATA = 0;
const CQE_RES = 8;
const PROT_READ_WRITE = 3;
const MAP_SHARED_POPULATE = 0x1 | 0x8000;
/** mmap's (void *) -1. */
const MAP_FAILED = 2n ** 64n - 1n;
/** Never wait inside the kernel for room: a full socket answers EAGAIN, as a non-blocking send(2) does. */
const MSG_DONTWAIT = 0x40;
const EINTR = 4;

/**
 * Sends, receives and closes on many stream sockets with one system call: the operations of a batch are
 * written as `IORING_OP_SEND`, `IORING_OP_RECV` and `IORING_OP_CLOSE` entries into io_uring's submission
 * ring, which this process shares with the kernel, and one `io_uring_enter` makes them all and waits for
 * their results: from four sends a batch, about half the CPU per send of one send(2) each (bench/RESULTS.md,
 * ninth round), the calls' entries and exits saved. The bytes sent go through a staging buffer of the ring's own
 * (`staging`), whose address the entries name; the bytes received are dropped by the kernel uncopied, for
 * a caller that only counts them (a receive that keeps them is `StreamSocket.receive`).
 */
export class SocketRing {
  /** Where the caller puts the bytes of the sends it queues (`queue` names a range of it). */
  readonly staging: Uint8Array<ArrayBuffer>;
  #count = 0;

  readonly #fd: number;
  readonly #ring: Deno.PointerObject;
  readonly #ringSize: number;
  readonly #sqes: Deno.PointerObject;
  readonly #sqesSize: number;
  readonly #u32: Uint32Array;
  readonly #entries: DataView;
  /** The same entries as bytes, to clear one in a call. */
  readonly #entryBytes: Uint8Array;
  readonly #completions: DataView;
  readonly #sqHead: number;
  readonly #sqTail: number;
  readonly #sqMask: number;
  readonly #cqHead: number;
  readonly #cqTail: number;
  readonly #cqMask: number;
  readonly #capacity: number;
  /** The staging buffer's address, a number (user-space addresses fit in 47 bits): no BigInt per send. */
  readonly #stagingAt: number;
  readonly #results: Int32Array;
  readonly #lengths: Int32Array;
  /** 1 where the batch's entry is a send: a full socket's EAGAIN is then a result of 0. */
  readonly #isSend: Uint8Array;

  private constructor(fd: number, params: DataView, capacity: number, stagingBytes: number) {
    this.#fd = fd;
    const sqEntries = params.getUint32(PARAMS_SQ_ENTRIES, true);
    const cqEntries = params.getUint32(PARAMS_CQ_ENTRIES, true);
    const sq = (offset: number) => params.getUint32(PARAMS_SQ_OFF + offset, true);
    const cq = (offset: number) => params.getUint32(PARAMS_CQ_OFF + offset, true);
    // One mapping holds both rings (IORING_FEAT_SINGLE_MMAP, checked by `open`), the entries another.
    this.#ringSize = Math.max(sq(SQ_OFF_ARRAY) + sqEntries * 4, cq(CQ_OFF_CQES) + cqEntries * CQE_SIZE);
    this.#sqesSize = sqEntries * SQE_SIZE;
    this.#ring = map(fd, this.#ringSize, 0n);
    this.#sqes = map(fd, this.#sqesSize, IORING_OFF_SQES);
    const ring = Deno.UnsafePointerView.getArrayBuffer(this.#ring, this.#ringSize);
    this.#u32 = new Uint32Array(ring);
    const entries = Deno.UnsafePointerView.getArrayBuffer(this.#sqes, this.#sqesSize);
    this.#entries = new DataView(entries);
    this.#entryBytes = new Uint8Array(entries);
    this.#completions = new DataView(ring, cq(CQ_OFF_CQES));
    this.#sqHead = sq(SQ_OFF_HEAD) / 4;
    this.#sqTail = sq(SQ_OFF_TAIL) / 4;
    this.#sqMask = this.#u32[sq(SQ_OFF_RING_MASK) / 4];
    this.#cqHead = cq(CQ_OFF_HEAD) / 4;
    this.#cqTail = cq(CQ_OFF_TAIL) / 4;
    this.#cqMask = this.#u32[cq(CQ_OFF_RING_MASK) / 4];
    // Entry i of the submission queue is always slot i: written once.
    for (let i = 0; i < sqEntries; i++) this.#u32[sq(SQ_OFF_ARRAY) / 4 + i] = i;
    this.#capacity = Math.min(capacity, sqEntries);
    this.staging = new Uint8Array(stagingBytes);
    // V8 never moves an ArrayBuffer's backing store, and the ring keeps the array alive.
    this.#stagingAt = Number(pointerValue(this.staging));
    this.#results = new Int32Array(this.#capacity);
    this.#lengths = new Int32Array(this.#capacity);
    this.#isSend = new Uint8Array(this.#capacity);
  }

  /**
   * A ring for batches of up to `capacity` sends of `stagingBytes` in all, or `undefined` where the kernel
   * offers none (io_uring disabled by `kernel.io_uring_disabled`, refused by a seccomp filter as Docker's
   * default one does, or a kernel older than 5.6): then send(2) does the job, one call per send.
   */
  static open(capacity: number, stagingBytes: number): SocketRing | undefined {
    const params = new Uint8Array(IO_URING_PARAMS_SIZE);
    const fd = libc().io_uring_setup(SYS_IO_URING_SETUP, capacity, params);
    if (fd < 0) return undefined;
    const view = new DataView(params.buffer);
    if (!(view.getUint32(PARAMS_FEATURES, true) & IORING_FEAT_SINGLE_MMAP)) {
      libc().close(fd);
      return undefined;
    }
    return new SocketRing(fd, view, capacity, stagingBytes);
  }

  /** Operations the ring takes in one batch. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Operations queued and not submitted yet. */
  get count(): number {
    return this.#count;
  }

  /**
   * Queues a send on socket `fd` of `staging`'s bytes from `offset`, `length` of them; its result comes
   * from `result(index)` after `submit`, `index` being what this returns (0 for the first of the batch).
   */
  queueSend(fd: number, offset: number, length: number): number {
    return this.#queue(IORING_OP_SEND, fd, this.#stagingAt + offset, length, MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  /**
   * Queues a receive on socket `fd` of up to `length` bytes, which the kernel drops without copying them
   * out (MSG_TRUNC; `staging` is named but never written); `result(index)` is then how many it took, 0
   * at the end of the stream, or the errno negated (`-EAGAIN`: none waited).
   */
  queueDiscardingReceive(fd: number, length: number): number {
    return this.#queue(IORING_OP_RECV, fd, this.#stagingAt, length, MSG_TRUNC | MSG_DONTWAIT);
  }

  /** Queues the close of descriptor `fd` (`StreamSocket.closeIn`); its result: 0, or the errno negated. */
  queueClose(fd: number): number {
    return this.#queue(IORING_OP_CLOSE, fd, 0, 0, 0);
  }

  #queue(opcode: number, fd: number, address: number, length: number, flags: number): number {
    if (this.#count === this.#capacity) throw new RangeError("the socket ring's batch is full");
    const index = this.#count++;
    this.#lengths[index] = length;
    this.#isSend[index] = opcode === IORING_OP_SEND ? 1 : 0;
    const tail = this.#u32[this.#sqTail] + index;
    const at = (tail & this.#sqMask) * SQE_SIZE;
    const entry = this.#entries;
    this.#entryBytes.fill(0, at, at + SQE_SIZE);
    entry.setUint8(at + SQE_OPCODE, opcode);
    entry.setInt32(at + SQE_FD, fd, true);
    entry.setUint32(at + SQE_ADDR, address % 2 ** 32, true);
    entry.setUint32(at + SQE_ADDR + 4, Math.floor(address / 2 ** 32), true);
    entry.setUint32(at + SQE_LEN, length, true);
    entry.setUint32(at + SQE_MSG_FLAGS, flags, true);
    entry.setUint32(at + SQE_USER_DATA, index, true);
    return index;
  }

  /**
   * Makes the queued operations, with one io_uring_enter (more only if a signal interrupted it), in the
   * order queued, and waits for all their results: afterwards `result(i)` is how many bytes send `i` sent
   * (0: no room, EAGAIN) or receive `i` took, or the errno negated, and the staging buffer is free again.
   */
  submit(): void {
    const count = this.#count;
    if (count === 0) return;
    const u32 = this.#u32;
    const tail = u32[this.#sqTail] + count;
    Atomics.store(u32, this.#sqTail, tail); // x86-64 keeps stores in order; the kernel reads the tail last
    let reaped = 0;
    while (reaped < count) {
      const unsubmitted = (tail - Atomics.load(u32, this.#sqHead)) >>> 0;
      const entered = libc().io_uring_enter(
        SYS_IO_URING_ENTER,
        this.#fd,
        unsubmitted,
        count - reaped,
        IORING_ENTER_GETEVENTS,
        null,
        0n,
      );
      if (entered < 0) {
        const errno = lastErrno();
        if (errno !== EINTR) throw new FatalError(`cannot use io_uring: ${errnoMessage(errno)}`);
      }
      let head = u32[this.#cqHead];
      const end = Atomics.load(u32, this.#cqTail);
      for (; head !== end; head = (head + 1) >>> 0, reaped++) {
        const at = (head & this.#cqMask) * CQE_SIZE;
        const index = this.#completions.getUint32(at + CQE_USER_DATA, true);
        const result = this.#completions.getInt32(at + CQE_RES, true);
        this.#results[index] = result === -EAGAIN && this.#isSend[index] === 1 ? 0 : result;
      }
      Atomics.store(u32, this.#cqHead, head);
    }
    this.#count = 0;
  }

  /** Drops the operations queued, unmade (the kernel sees none before `submit`). */
  clear(): void {
    this.#count = 0;
  }

  /**
   * Operation `index`'s result after `submit`: bytes sent (0: no room) or received (0: the end of the
   * stream), or the errno negated.
   */
  result(index: number): number {
    return this.#results[index];
  }

  /** The bytes operation `index` offered (a send) or asked for (a receive). */
  length(index: number): number {
    return this.#lengths[index];
  }

  close(): void {
    libc().munmap(this.#ring, size(this.#ringSize));
    libc().munmap(this.#sqes, size(this.#sqesSize));
    libc().close(this.#fd);
  }
}

/** Maps `length` bytes of io_uring `fd`'s memory at `offset`, shared with the kernel. */
function map(fd: number, length: number, offset: bigint): Deno.PointerObject {
  const at = libc().mmap(null, size(length), PROT_READ_WRITE, MAP_SHARED_POPULATE, fd, offset);
  if (at === null || BigInt(Deno.UnsafePointer.value(at)) === MAP_FAILED) {
    throw new FatalError(`cannot map io_uring's rings: ${errnoMessage(lastErrno())}`);
  }
  return at;
}
