import { type Address, mix32 } from "../wire/mod.ts";

/** Slots a new map starts with (a power of two). */
const FIRST_CAPACITY = 16;
/**
 * Random per process. Client addresses and ports are whatever the packets say, spoofed ones included: with a
 * fixed hash a SYN flood could pick endpoints that all share one probe run, and make every lookup walk it
 * (V8's own `Map` seeds its hashes for the same reason).
 */
const SEED = crypto.getRandomValues(new Uint32Array(1))[0];
/** A slot's port when it holds nothing: ports are 0..65535. */
const EMPTY = -1;

/**
 * A map from a client address and port (either family) to a value, for the session table: open
 * addressing with linear probing over typed arrays, so that neither a lookup nor an entry makes a key.
 * A `Map` keyed by `endpointKey` needs a 48-bit number per IPv4 lookup (a heap number) and per entry,
 * and its own table entries besides: per packet garbage, and per session memory that lingers with it
 * and dies old. Here an IPv4 address sits in an `Int32Array`
 * and a port in an `Int32Array`; an IPv6 address (its group string, `wire/address_key.ts`) in an array
 * beside, compared as a string. Deleting shifts the entries after it back, so no tombstones pile up.
 */
export class EndpointMap<V> {
  #mask = FIRST_CAPACITY - 1;
  /** 32 - log2(slots): a hash's top bits are its slot. */
  #shift = 32 - Math.log2(FIRST_CAPACITY);
  #size = 0;
  #ports = new Int32Array(FIRST_CAPACITY).fill(EMPTY);
  #v4 = new Int32Array(FIRST_CAPACITY);
  /** An IPv6 entry's address; `undefined` for an IPv4 entry or an empty slot. */
  #v6: (string | undefined)[] = new Array(FIRST_CAPACITY).fill(undefined);
  #values: (V | undefined)[] = new Array(FIRST_CAPACITY).fill(undefined);

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** The value of `address`:`port`, if any. */
  get(address: Address, port: number): V | undefined {
    const slot = this.#find(address, port);
    return slot < 0 ? undefined : this.#values[slot];
  }

  /** Whether `address`:`port` has a value. */
  has(address: Address, port: number): boolean {
    return this.#find(address, port) >= 0;
  }

  /** Gives `address`:`port` the value `value`, in place of any it had. */
  set(address: Address, port: number, value: V): void {
    const found = this.#find(address, port);
    if (found >= 0) {
      this.#values[found] = value;
      return;
    }
    if (2 * (this.#size + 1) > this.#mask + 1) this.#grow();
    this.#insert(address, port, value);
  }

  /** Forgets `address`:`port`; `false` when it had no value. */
  delete(address: Address, port: number): boolean {
    let hole = this.#find(address, port);
    if (hole < 0) return false;
    const mask = this.#mask;
    const ports = this.#ports;
    // Backward shift: each entry after the hole, up to an empty slot, moves into the hole when its home
    // slot is not between the hole and where it is (cyclically), so every probe still finds it.
    for (let slot = (hole + 1) & mask; ports[slot] !== EMPTY; slot = (slot + 1) & mask) {
      const home = this.#home(this.#v6[slot] ?? this.#v4[slot], ports[slot]);
      if (((slot - home) & mask) >= ((slot - hole) & mask)) {
        this.#move(slot, hole);
        hole = slot;
      }
    }
    ports[hole] = EMPTY;
    this.#v6[hole] = undefined;
    this.#values[hole] = undefined;
    this.#size--;
    return true;
  }

  /** Forgets every entry (keeping the room they took, for the next ones). */
  clear(): void {
    this.#ports.fill(EMPTY);
    this.#v6.fill(undefined);
    this.#values.fill(undefined);
    this.#size = 0;
  }

  /** The values, in no particular order; the map must not change while they are read. */
  *values(): IterableIterator<V> {
    const ports = this.#ports;
    for (let slot = 0; slot <= this.#mask; slot++) if (ports[slot] !== EMPTY) yield this.#values[slot]!;
  }

  #home(address: Address, port: number): number {
    return endpointHash(address, port) >>> this.#shift;
  }

  /** The slot of `address`:`port`, or -1. */
  #find(address: Address, port: number): number {
    const mask = this.#mask;
    const ports = this.#ports;
    let slot = this.#home(address, port);
    if (typeof address === "number") {
      for (; ports[slot] !== EMPTY; slot = (slot + 1) & mask) {
        if (ports[slot] === port && this.#v4[slot] === address && this.#v6[slot] === undefined) return slot;
      }
    } else {
      for (; ports[slot] !== EMPTY; slot = (slot + 1) & mask) {
        if (ports[slot] === port && this.#v6[slot] === address) return slot;
      }
    }
    return -1;
  }

  /** Puts an entry the map does not have into the first free slot from its home. */
  #insert(address: Address, port: number, value: V): void {
    const mask = this.#mask;
    let slot = this.#home(address, port);
    while (this.#ports[slot] !== EMPTY) slot = (slot + 1) & mask;
    this.#ports[slot] = port;
    if (typeof address === "number") {
      this.#v4[slot] = address;
      this.#v6[slot] = undefined;
    } else {
      this.#v6[slot] = address;
    }
    this.#values[slot] = value;
    this.#size++;
  }

  #move(from: number, to: number): void {
    this.#ports[to] = this.#ports[from];
    this.#v4[to] = this.#v4[from];
    this.#v6[to] = this.#v6[from];
    this.#values[to] = this.#values[from];
  }

  /** Twice the slots, every entry put again. */
  #grow(): void {
    const ports = this.#ports;
    const v4 = this.#v4;
    const v6 = this.#v6;
    const values = this.#values;
    const capacity = 2 * (this.#mask + 1);
    this.#mask = capacity - 1;
    this.#shift--;
    this.#ports = new Int32Array(capacity).fill(EMPTY);
    this.#v4 = new Int32Array(capacity);
    this.#v6 = new Array(capacity).fill(undefined);
    this.#values = new Array(capacity).fill(undefined);
    this.#size = 0;
    for (let slot = 0; slot < ports.length; slot++) {
      if (ports[slot] !== EMPTY) this.#insert(v6[slot] ?? v4[slot], ports[slot], values[slot]!);
    }
  }
}

/**
 * The hash of `address`:`port` in an `EndpointMap`, seeded: each 32-bit word of the address, then the port,
 * goes through `mix32` with what came before, so which endpoints collide depends on the seed, not on the
 * words alone (a sum of words, as `addressHash`'s for IPv6, collides for any two addresses of one /64
 * whose last two words keep `31 * w2 + w3`).
 */
export function endpointHash(address: Address, port: number): number {
  let hash = SEED;
  if (typeof address === "number") {
    hash = mix32(hash ^ address);
  } else {
    for (let i = 0; i < 8; i += 2) {
      hash = mix32(hash ^ (address.charCodeAt(i) << 16 | address.charCodeAt(i + 1)));
    }
  }
  return mix32(hash ^ port);
}
