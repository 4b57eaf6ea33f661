import assert from "node:assert/strict";
import { captureFormat, decodeTcpPacket, isWireError, LinkType } from "../../src/wire/mod.ts";
import { encodePcapFile } from "./_pcap_file.ts";
import { hex, LO_ETHERNET_DATA, LO_ETHERNET_SYN, VETH_SLL2_SYN_OUT } from "./_fixtures.ts";

const hasTcpdump = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"].some((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

Deno.test("the file header is the classic little-endian microsecond one", () => {
  const file = encodePcapFile(LinkType.ETHERNET, []);
  assert.deepEqual(file, hex("d4c3 b2a1 0200 0400 0000 0000 0000 0000 0000 0400 0100 0000"));
});

Deno.test("records carry split timestamps, captured and original lengths", () => {
  const file = encodePcapFile(LinkType.LINUX_SLL2, [{
    time: 1764107849.25,
    data: hex("0102 03"),
    originalLength: 70,
  }], {
    nanosecond: true,
    bigEndian: true,
    snaplen: 96,
  });
  assert.deepEqual(
    file,
    hex(`a1b2 3c4d 0002 0004 0000 0000 0000 0000 0000 0060 0000 0114
         6926 2649 0ee6 b280 0000 0003 0000 0046 0102 03`),
  );
});

Deno.test("a fraction that rounds up to a whole second carries into the seconds", () => {
  const file = encodePcapFile(LinkType.RAW, [{ time: 9.9999999, data: new Uint8Array(0) }]);
  const view = new DataView(file.buffer);
  assert.deepEqual([view.getUint32(24, true), view.getUint32(28, true)], [10, 0]);
});

Deno.test("frames longer than the snaplen are cut and keep their original length", () => {
  const file = encodePcapFile(LinkType.ETHERNET, [{ time: 1, data: LO_ETHERNET_DATA }], { snaplen: 68 });
  const view = new DataView(file.buffer);
  assert.deepEqual([view.getUint32(32, true), view.getUint32(36, true)], [68, LO_ETHERNET_DATA.length]);
  assert.equal(file.length, 24 + 16 + 68);
  const frame = file.subarray(40);
  const packet = decodeTcpPacket(LinkType.ETHERNET, frame);
  assert.ok(packet !== undefined && !isWireError(packet));
  assert.deepEqual([packet.tcp.payloadLength, packet.tcp.capturedPayloadLength], [5, 2]);
});

Deno.test({
  name: "tcpdump reads a written file back as the packets it holds",
  ignore: !hasTcpdump,
  async fn() {
    const path = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      await Deno.writeFile(
        path,
        encodePcapFile(LinkType.ETHERNET, [
          { time: 1764107849.976533, data: LO_ETHERNET_SYN },
          { time: 1764107849.976678, data: LO_ETHERNET_DATA },
        ]),
      );
      const { code, stdout } = await new Deno.Command("tcpdump", {
        args: ["-nn", "-tt", "-r", path],
        stderr: "null",
      })
        .output();
      assert.equal(code, 0);
      const lines = new TextDecoder().decode(stdout).trim().split("\n");
      assert.equal(lines.length, 2);
      assert.match(
        lines[0],
        /^1764107849\.976533 IP 127\.0\.0\.1\.40812 > 127\.0\.0\.1\.5733: Flags \[S\], seq 438402434,/,
      );
      assert.match(
        lines[1],
        /^1764107849\.976678 .* Flags \[P\.\], seq 438402435:438402440, ack 488201095, win 64, .*length 5$/,
      );
      await Deno.writeFile(
        path,
        encodePcapFile(LinkType.LINUX_SLL2, [{ time: 1, data: VETH_SLL2_SYN_OUT }], { nanosecond: true }),
      );
      const sll2 = await new Deno.Command("tcpdump", { args: ["-nn", "-r", path], stderr: "null" }).output();
      assert.match(
        new TextDecoder().decode(sll2.stdout),
        / Out +IP 198\.18\.99\.1\.59146 > 198\.18\.99\.2\.5734: Flags \[S\]/,
      );
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test("a capture's format is told from its first four bytes, in either byte order", () => {
  const magic = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  assert.equal(captureFormat(magic(encodePcapFile(LinkType.RAW, []))), "pcap");
  assert.equal(captureFormat(magic(encodePcapFile(LinkType.RAW, [], { bigEndian: true }))), "pcap");
  assert.equal(captureFormat(magic(encodePcapFile(LinkType.RAW, [], { nanosecond: true }))), "pcap");
  assert.equal(captureFormat(0x4d3cb2a1), "pcap");
  assert.equal(captureFormat(0x0a0d0d0a), "pcapng");
  assert.equal(captureFormat(0x47455420), undefined, "GET ");
  assert.equal(captureFormat(0), undefined);
});
