/**
 * Native bindings: libpcap for capture and pcap files, libc for raw sockets and `poll`. The only
 * place tcpshadow calls C; everything here turns C failures into `FatalError`s.
 *
 * @example
 * ```ts
 * import { Capture } from "./mod.ts";
 *
 * const capture = Capture.openOffline("traffic.pcap");
 * for (let packet = capture.next(); packet; packet = capture.next()) console.log(packet.data.length);
 * capture.close();
 * ```
 *
 * @module
 */
export {
  Capture,
  type CapturedPacket,
  type CaptureStats,
  compileFilter,
  libpcapVersion,
  type LiveOptions,
  PcapWriter,
} from "./libpcap.ts";
export {
  connectDescriptor,
  errnoMessage,
  FdPoller,
  lastErrno,
  localAddressToward,
  PacketBatch,
  POLL_END,
  POLL_ERROR,
  POLL_READ,
  POLL_WRITE,
  RawSocket,
  readKernelFile,
  routeNetlinkDump,
  signalEventFd,
  socketAddress,
  SocketPoller,
  SocketRing,
  StreamSocket,
} from "./libc.ts";
