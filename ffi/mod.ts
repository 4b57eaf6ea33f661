/**
 * Native bindings: libpcap for capture and pcap files, libc for raw sockets and `poll`. The only
 * place tcpshadow calls C; everything here turns C failures into `FatalError`s.
 */
export {
  Capture,
  type CapturedPacket,
  type CaptureStats,
  compileFilter,
  libpcapVersion,
  listDevices,
  type LiveOptions,
  PcapWriter,
} from "./libpcap.ts";
export { errnoMessage, FdPoller, lastErrno, PacketBatch, RawSocket, readKernelFile } from "./libc.ts";
