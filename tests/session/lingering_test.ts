/** What lingers of copies that are over: slots in a ring of typed arrays (src/session/lingering.ts). */
import assert from "node:assert/strict";
import { LingeringCopies } from "../../src/session/lingering.ts";
import { type Address, ipv6Address, parseIpv6, TcpFlag, type TcpRepr } from "../../src/wire/mod.ts";
import { keptSegment } from "./_segment.ts";

const TARGETS = [
  { targetAddress: 0xc6120002 | 0, targetPort: 8080 },
  { targetAddress: ipv6Address(parseIpv6("2001:2::2")!), targetPort: 8443 },
];
const CLIENT6 = ipv6Address(parseIpv6("2001:2:0:1::7")!);

function lastAck(i: number): TcpRepr {
  return {
    srcPort: 0,
    dstPort: 0,
    seq: (0x90000000 + i) | 0,
    ack: -i,
    flags: TcpFlag.ACK,
    window: 500 + i,
    options: i % 2 === 0 ? { timestamp: { value: (0xf0000000 + i) | 0, echo: i } } : undefined,
  };
}

Deno.test("lingering copies end in the order they began, their fields kept as the ring wraps and grows", () => {
  const lingering = new LingeringCopies(TARGETS);
  const slots = new Map<number, number>();
  const add = (i: number) => {
    const address: Address = i % 3 === 0 ? CLIENT6 : (0xc6130000 + i) | 0;
    const slot = lingering.add(1000 + i, address, 1024 + i, i % 2, i, i % 5 === 0 ? undefined : lastAck(i));
    if (i % 4 === 0) lingering.holdOriginal(slot, (0xc6120a00 + i) | 0, 40_000 + i, (0x80000000 + i) | 0);
    slots.set(i, slot);
  };
  // Half of them end before the rest begin, so the ring has wrapped when it grows (64 slots, then 128).
  let next = 0;
  let ended = 0;
  for (; next < 48; next++) add(next);
  for (; ended < 40; ended++) {
    assert.equal(lingering.oldest, slots.get(ended));
    lingering.dropOldest();
  }
  for (; next < 200; next++) add(next);
  assert.equal(lingering.size, 200 - 40);
  for (; ended < 200; ended++) {
    const i = ended;
    const slot = lingering.oldest;
    assert.equal(lingering.nextEnd, 1000 + i, "the oldest first");
    assert.equal(lingering.address(slot), i % 3 === 0 ? CLIENT6 : (0xc6130000 + i) | 0);
    assert.equal(lingering.port(slot), 1024 + i);
    assert.equal(lingering.target(slot), i % 2);
    assert.deepEqual({ ...lingering.endpoints(slot) }, {
      clientAddress: lingering.address(slot),
      clientPort: 1024 + i,
      ...TARGETS[i % 2],
      flowInfo: i,
    });
    assert.equal(lingering.holdsOriginal(slot), i % 4 === 0);
    if (i % 4 === 0) {
      assert.equal(lingering.originalAddress(slot), (0xc6120a00 + i) | 0);
      assert.equal(lingering.originalPort(slot), 40_000 + i);
      assert.equal(lingering.clientIsn(slot), (0x80000000 + i) | 0);
    }
    const answer = lingering.answer(slot, TcpFlag.FIN | TcpFlag.ACK, 999 + i);
    if (i % 5 === 0) assert.equal(answer, undefined, "no last ACK: a session that did not complete");
    else {
      assert.deepEqual(keptSegment(answer!), {
        ...keptSegment(lastAck(i)),
        srcPort: 1024 + i,
        dstPort: TARGETS[i % 2].targetPort,
        payload: undefined,
      });
    }
    lingering.dropOldest();
  }
  assert.equal(lingering.size, 0);
  assert.equal(lingering.nextEnd, Infinity);
});

Deno.test("a lingering copy answers only a repeated FIN, and only until its lingering ends", () => {
  const lingering = new LingeringCopies(TARGETS);
  const slot = lingering.add(2000, 0xc6130001 | 0, 5000, 0, 0, lastAck(1));
  assert.equal(lingering.answer(slot, TcpFlag.ACK, 10), undefined, "not a FIN");
  assert.notEqual(lingering.answer(slot, TcpFlag.FIN | TcpFlag.ACK, 1999), undefined);
  assert.equal(lingering.answer(slot, TcpFlag.FIN | TcpFlag.ACK, 2000), undefined, "over");
});
