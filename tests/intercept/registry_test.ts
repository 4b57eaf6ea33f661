import assert from "node:assert/strict";
import { clientKey, ClientRegistry, type ReplySink } from "../../src/intercept/registry.ts";
import { parseIpv4 } from "../../src/wire/address.ts";
import { endpointKey } from "../../src/wire/address_key.ts";

/** A peer that remembers the first byte of each record it accepts, refusing past `capacity`. */
class FakePeer implements ReplySink {
  readonly received: number[] = [];
  constructor(readonly capacity = Infinity) {}
  add(record: Uint8Array): boolean {
    if (this.received.length >= this.capacity) return false;
    this.received.push(record[0]);
    return true;
  }
}

const client = parseIpv4("198.19.0.7")!;
const key = clientKey(client, 40000);
const otherKey = clientKey(client, 40001);

function record(tag: number): Uint8Array {
  return new Uint8Array(64).fill(tag);
}

Deno.test("client keys tell addresses and ports apart", () => {
  assert.notEqual(clientKey(client, 1), clientKey(client + 1, 1));
  assert.notEqual(clientKey(client, 1), clientKey(client, 2));
  assert.equal(clientKey(0xffffffff, 0xffff), 0xffffffffffff);
  // A reply's destination (a view reads it signed) and a registration's address meet as one key.
  assert.equal(clientKey(0xc6130001 | 0, 80), endpointKey(0xc6130001 | 0, 80));
});

Deno.test("a registered client's replies go to the peer that registered it", () => {
  const table = new ClientRegistry<FakePeer>();
  const a = new FakePeer(), b = new FakePeer();
  table.register(a, key);
  table.register(b, otherKey);
  table.deliver(key, record(1), 0);
  table.deliver(otherKey, record(2), 0);
  table.deliver(key, record(3), 0);
  assert.deepEqual(a.received, [1, 3]);
  assert.deepEqual(b.received, [2]);
  assert.equal(table.counters.forwarded, 3);
});

Deno.test("the table copies a held record, so the caller may reuse its buffer", () => {
  const table = new ClientRegistry<FakePeer>();
  const peer = new FakePeer();
  const scratch = record(7);
  table.deliver(key, scratch, 0);
  scratch.fill(0);
  table.register(peer, key);
  assert.deepEqual(peer.received, [7]);
});

Deno.test("replies that beat their registration are held, then released in order on registration", () => {
  const table = new ClientRegistry<FakePeer>();
  const peer = new FakePeer();
  table.deliver(key, record(1), 0);
  table.deliver(otherKey, record(9), 100);
  table.deliver(key, record(2), 500);
  assert.equal(table.waiting, 3);
  assert.equal(table.counters.held, 3);
  table.register(peer, key);
  assert.deepEqual(peer.received, [1, 2]);
  assert.equal(table.waiting, 1);
  table.deliver(key, record(3), 600);
  assert.deepEqual(peer.received, [1, 2, 3]);
  table.expire(10_000);
  assert.equal(table.counters.expired, 1, "only the unregistered one expires");
  assert.equal(table.counters.forwarded, 3);
  assert.equal(table.counters.released, 2);
});

Deno.test("held replies expire after 2 seconds, not before", () => {
  const table = new ClientRegistry<FakePeer>();
  const peer = new FakePeer();
  table.deliver(key, record(1), 1000);
  table.deliver(key, record(2), 1500);
  table.expire(2999);
  assert.equal(table.counters.expired, 0);
  table.expire(3000);
  assert.equal(table.counters.expired, 1);
  assert.equal(table.waiting, 1);
  table.register(peer, key);
  assert.deepEqual(peer.received, [2]);
  table.expire(10_000);
  assert.equal(table.counters.expired, 1, "a released reply does not expire later");
});

Deno.test("the hold queue is capped, and drops past the cap are counted", () => {
  const table = new ClientRegistry<FakePeer>({ maxHeld: 3 });
  for (let i = 0; i < 5; i++) table.deliver(clientKey(client, i), record(i), 0);
  assert.equal(table.waiting, 3);
  assert.equal(table.counters.holdOverflow, 2);
  table.expire(2000);
  table.deliver(key, record(1), 2000);
  assert.equal(table.counters.holdOverflow, 2, "room again once the old ones expired");
});

Deno.test("the hold queue stays correct over many expiry cycles", () => {
  const table = new ClientRegistry<FakePeer>();
  const peer = new FakePeer();
  for (let now = 0; now < 10_000; now++) {
    table.deliver(clientKey(client, now % 50), record(now & 0xff), now);
    table.expire(now);
  }
  assert.equal(table.waiting, 2000);
  assert.equal(table.counters.expired, 8000);
  table.register(peer, clientKey(client, 49));
  assert.equal(peer.received.length, 40);
});

Deno.test("a peer that drops loses all its registrations and no one else's", () => {
  const table = new ClientRegistry<FakePeer>();
  const a = new FakePeer(), b = new FakePeer();
  table.register(a, key);
  table.register(a, otherKey);
  table.register(b, clientKey(client, 5));
  assert.equal(table.dropPeer(a), 2);
  assert.equal(table.size, 1);
  table.deliver(key, record(1), 0);
  table.deliver(clientKey(client, 5), record(2), 0);
  assert.deepEqual(a.received, []);
  assert.deepEqual(b.received, [2]);
  assert.equal(table.waiting, 1, "a dropped peer's replies wait for a new registration");
  assert.equal(table.dropPeer(a), 0);
});

Deno.test("delete removes a registration, but only for the peer that owns it", () => {
  const table = new ClientRegistry<FakePeer>();
  const a = new FakePeer(), b = new FakePeer();
  table.register(a, key);
  table.unregister(b, key);
  table.deliver(key, record(1), 0);
  assert.deepEqual(a.received, [1], "b's delete left a's registration alone");
  table.unregister(a, key);
  assert.equal(table.size, 0);
  assert.equal(table.dropPeer(a), 0);
});

Deno.test("a client another peer holds cannot be taken: the first registrant keeps it", () => {
  const table = new ClientRegistry<FakePeer>();
  const copy = new FakePeer(), stranger = new FakePeer();
  assert.equal(table.register(copy, key), "added");
  assert.equal(table.register(stranger, key), "taken");
  assert.equal(table.register(copy, key), "renewed");
  table.deliver(key, record(1), 0);
  assert.deepEqual(copy.received, [1]);
  assert.deepEqual(stranger.received, []);
  assert.equal(table.counters.takeoversRefused, 1);
  assert.equal(table.ownerOf(key), copy);
  assert.equal(table.registrationsOf(stranger), 0);
  table.unregister(copy, key);
  assert.equal(table.register(stranger, key), "added", "free once deleted");
  table.dropPeer(stranger);
  assert.equal(table.register(copy, key), "added", "free once its holder disconnected");
});

Deno.test("registrations are capped per peer and in total, and a dropped peer frees its share", () => {
  const table = new ClientRegistry<FakePeer>({ maxRegistrations: 5, maxRegistrationsPerPeer: 3 });
  const a = new FakePeer(), b = new FakePeer();
  const outcomes = [0, 1, 2, 3].map((port) => table.register(a, clientKey(client, port)));
  assert.deepEqual(outcomes, ["added", "added", "added", "peer-full"]);
  assert.equal(table.register(a, clientKey(client, 0)), "renewed", "renewing is no new registration");
  assert.equal(table.register(b, clientKey(client, 10)), "added");
  assert.equal(table.register(b, clientKey(client, 11)), "added");
  assert.equal(table.register(b, clientKey(client, 12)), "full");
  assert.equal(table.size, 5);
  assert.equal(table.dropPeer(a), 3);
  assert.equal(table.register(b, clientKey(client, 12)), "added");
});

Deno.test("an unused registration ages out after one to two idle times; a used one lives on", () => {
  const table = new ClientRegistry<FakePeer>({ idleMs: 1000 });
  const peer = new FakePeer();
  table.expire(0);
  table.register(peer, key);
  table.register(peer, otherKey);
  table.expire(1000); // one generation old: both still routed
  table.deliver(otherKey, record(1), 1500); // used: back in the current generation
  assert.equal(table.size, 2);
  assert.equal(table.registrationsOf(peer), 2);
  table.expire(2000);
  assert.equal(table.size, 1, "key went unused for 1000-2000 ms");
  assert.equal(table.counters.agedOut, 1);
  assert.equal(table.ownerOf(key), undefined);
  assert.equal(table.ownerOf(otherKey), peer);
  assert.equal(table.registrationsOf(peer), 1);
  const other = new FakePeer();
  assert.equal(table.register(other, key), "added", "an aged-out client is free again");
  table.expire(3000);
  table.expire(4000);
  assert.equal(table.size, 0);
  assert.equal(table.registrationsOf(peer), 0);
  assert.equal(table.dropPeer(peer), 0);
});

Deno.test("a peer's registrations in both generations are dropped with it, and deleted from either", () => {
  const table = new ClientRegistry<FakePeer>({ idleMs: 1000 });
  const a = new FakePeer(), b = new FakePeer();
  table.expire(0);
  table.register(a, clientKey(client, 1));
  table.register(a, clientKey(client, 2));
  table.register(b, clientKey(client, 3));
  table.expire(1000);
  table.register(a, clientKey(client, 4));
  table.unregister(a, clientKey(client, 2));
  assert.equal(table.registrationsOf(a), 2);
  assert.equal(table.dropPeer(a), 2);
  assert.equal(table.size, 1);
  assert.equal(table.ownerOf(clientKey(client, 3)), b);
});

Deno.test("records a slow peer refuses are counted, not forwarded", () => {
  const table = new ClientRegistry<FakePeer>();
  const slow = new FakePeer(1);
  table.register(slow, key);
  table.deliver(key, record(1), 0);
  table.deliver(key, record(2), 0);
  assert.deepEqual(slow.received, [1]);
  assert.equal(table.counters.forwarded, 1);
  assert.equal(table.counters.peerOverflow, 1);
});
