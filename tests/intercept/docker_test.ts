/** intercept -D dockerIP-origIP: replies to the container's view of a client go to the copy of origIP. */
import assert from "node:assert/strict";
import { rewriteDestination } from "../../src/intercept/docker.ts";
import { encodeReplyRecord, parseReplyRecord, REPLY_RECORD_LENGTH } from "../../src/protocol/mod.ts";
import { buildIpv4Tcp } from "../../src/wire/mod.ts";

const DOCKER = 0xac110002 | 0; // 172.17.0.2
const ORIGINAL = 0xc6130001 | 0; // 198.19.0.1
const rewrite = { from: DOCKER, to: ORIGINAL };

function replyTo(destination: number): Uint8Array {
  const packet = buildIpv4Tcp({
    src: 0xc6120002,
    dst: destination,
    tcp: { srcPort: 8080, dstPort: 40_000, seq: 5000, ack: 1001, flags: 0x12, window: 65535 },
  });
  const record = new Uint8Array(REPLY_RECORD_LENGTH);
  encodeReplyRecord(packet, 0, record, 0);
  return record;
}

Deno.test("a reply to dockerIP is routed as, and says it is, a reply to origIP", () => {
  const record = replyTo(DOCKER);
  assert.equal(rewriteDestination(record, DOCKER, rewrite), ORIGINAL);
  assert.equal(parseReplyRecord(record)?.ip.dst, ORIGINAL);
});

Deno.test("other replies, and every reply without -D, are left as they are", () => {
  const other = replyTo(0xc6130009);
  const before = other.slice();
  assert.equal(rewriteDestination(other, 0xc6130009, rewrite), 0xc6130009);
  assert.deepEqual(other, before);
  const record = replyTo(DOCKER);
  assert.equal(rewriteDestination(record, DOCKER, undefined), DOCKER);
  assert.equal(parseReplyRecord(record)?.ip.dst, DOCKER);
});
