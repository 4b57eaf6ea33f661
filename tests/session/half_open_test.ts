import assert from "node:assert/strict";
import { HalfOpenCopies } from "../../src/session/half_open.ts";

Deno.test("half-open copies come out oldest first, as a Map's insertion order has them", () => {
  let state = 7;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296;
  const list = new HalfOpenCopies<string>();
  const reference = new Map<number, string>();
  for (let step = 0; step < 20_000; step++) {
    // Ids as the table's: small, freed and taken again; sometimes past the arrays' room, so they grow.
    const id = Math.floor(next() * (step < 10_000 ? 40 : 300));
    const action = next();
    if (action < 0.45) {
      list.add(id, `copy ${step}`);
      reference.set(id, `copy ${step}`);
    } else if (action < 0.8) {
      list.delete(id);
      reference.delete(id);
    } else {
      const oldest = reference.keys().next();
      if (!oldest.done) {
        const expected = reference.get(oldest.value);
        reference.delete(oldest.value);
        assert.equal(list.takeOldest(), expected);
      } else {
        assert.equal(list.takeOldest(), undefined);
      }
    }
    assert.equal(list.size, reference.size);
  }
  for (const expected of reference.values()) assert.equal(list.takeOldest(), expected);
  assert.equal(list.takeOldest(), undefined);
  assert.equal(list.size, 0);
});
