/** What copy says about an `--input` file it cannot use: one line that names the file once. */
import { FatalError, UsageError } from "../../errors.ts";

/** libpcap could not read `path` as a capture: the file given is the mistake (exit 2). */
export function notACapture(path: string, error: FatalError): UsageError {
  return new UsageError(
    `--input: ${path} is not a pcap or pcapng capture (${withoutPath(error.message, path)})`,
  );
}

/** A capture of a link type copy cannot decode (exit 2). */
export function unsupportedLinkType(path: string, linkType: number): UsageError {
  return new UsageError(
    `--input: ${path} has link type ${linkType}; copy reads Ethernet, raw IP, Linux cooked ` +
      `(tcpdump -i any) and loopback captures`,
  );
}

/** libpcap refused the capture filter for this file's link type (exit 2). */
export function cannotFilter(path: string, error: FatalError): UsageError {
  return new UsageError(`--input: cannot filter ${path}: ${error.message}`);
}

/** `path` cannot be read at all (missing, no permission): exit 1, as the file is not at fault. */
export function cannotRead(path: string, error: unknown): FatalError {
  return new FatalError(`cannot read ${path}: ${ioReason(error)}`);
}

/** libpcap's errors start with the file name, which our messages already give. */
export function withoutPath(message: string, path: string): string {
  const prefix = `cannot read ${path}: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

/** An I/O error's text without Deno's "(os error N): open '...'" tail. */
function ioReason(error: unknown): string {
  return (error as Error).message.replace(/ \(os error \d+\).*$/, "");
}
