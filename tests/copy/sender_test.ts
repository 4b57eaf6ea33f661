import assert from "node:assert/strict";
import { PacketBatch } from "../../ffi/mod.ts";
import { BATCH_PACKETS, BATCH_SLOT, type Outlet, PacketSender, sourceToward } from "../../src/copy/sender.ts";
import {
  type Address,
  formatAddress,
  formatIpv6,
  ipv6Address,
  Ipv6View,
  isWireError,
  parseIpv6,
  TcpView,
} from "../../src/wire/mod.ts";
import { verifyTcpChecksum } from "../wire/_checksum.ts";

/** An outlet that keeps a copy of every packet it is given, as the link outlet's frames would leave. */
class RecordingOutlet implements Outlet<Address> {
  readonly headerLength = 14;
  readonly batch = new PacketBatch("link", BATCH_PACKETS, BATCH_SLOT);
  readonly packets: { ip: Uint8Array; destination: Address }[] = [];

  queue(length: number, destination: Address): void {
    this.packets.push({ ip: this.batch.nextSlot().slice(this.headerLength, length), destination });
    this.batch.push(length);
  }

  sendBatch(): number {
    this.batch.clear();
    return 0;
  }

  sendOne(packet: Uint8Array<ArrayBuffer>, destination: Address): boolean {
    this.packets.push({ ip: packet.slice(this.headerLength), destination });
    return true;
  }

  close(): void {}
}

const v6 = (text: string) => ipv6Address(parseIpv6(text)!);

Deno.test("IPv6 packets carry their own source and destination, however they follow one another", () => {
  const outlet = new RecordingOutlet();
  const sender = new PacketSender(outlet, [v6("2001:2::fa")]);
  const [a, b] = [v6("2001:2:0:1::1"), v6("2001:2:0:1::2")];
  const [target, other] = [v6("2001:2::fa"), v6("2001:2::fb")];
  // The same source and target several times running, then each changing alone, then both,
  // and one large packet outside the batch between them.
  const sends: [Address, Address, number][] = [
    [a, target, 0],
    [a, target, 0],
    [b, target, 0],
    [b, other, 0],
    [a, other, 3000],
    [a, target, 0],
    [b, other, 0],
  ];
  for (const [index, [source, destination, payload]] of sends.entries()) {
    const tcp = { srcPort: 40_000 + index, dstPort: 8080, seq: index, ack: 0, flags: 0x10, window: 100 };
    sender.send(source, destination, { ...tcp, payload: new Uint8Array(payload) }, index);
  }
  sender.flush();
  assert.equal(outlet.packets.length, sends.length);
  for (const [index, packet] of outlet.packets.entries()) {
    const [source, destination] = sends[index];
    const ip = Ipv6View.check(packet.ip);
    if (isWireError(ip)) throw new Error(ip.message);
    assert.equal(formatIpv6(ip.src), formatAddress(source), `packet ${index}'s source`);
    assert.equal(formatIpv6(ip.dst), formatAddress(destination), `packet ${index}'s destination`);
    assert.equal(packet.destination, destination);
    assert.equal(ip.flowInfo, index);
    const tcp = TcpView.check(packet.ip, 40, ip.payloadLength);
    if (isWireError(tcp)) throw new Error(tcp.message);
    assert.equal(tcp.srcPort, 40_000 + index);
    assert.ok(verifyTcpChecksum(ip, tcp), `packet ${index}'s TCP checksum`);
  }
  sender.close();
});

Deno.test("the IPv6 raw socket's source is the kernel's one source toward all targets, or none", () => {
  const loopback = v6("::1");
  assert.deepEqual(sourceToward([loopback, loopback]), parseIpv6("::1"));
  // Toward a lab address the kernel picks another source than ::1, or has no route: no one source.
  assert.equal(sourceToward([loopback, v6("2001:2::fa")]), undefined);
  assert.equal(sourceToward([]), undefined);
});
