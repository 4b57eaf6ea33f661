import assert from "node:assert/strict";
import { Queue } from "../../src/session/queue.ts";

Deno.test("a queue gives its items back in order, across compactions and emptyings", () => {
  const queue = new Queue<number>();
  let next = 0;
  let expected = 0;
  // Fill more than it takes, then less, so it compacts, empties and fills again.
  for (let round = 0; round < 50; round++) {
    const pushes = round % 7 === 0 ? 300 : 3;
    for (let i = 0; i < pushes; i++) queue.push(next++);
    const takes = round % 2 === 0 ? 2 : queue.length;
    for (let i = 0; i < takes; i++) {
      assert.equal(queue.at(0), expected);
      assert.equal(queue.shift(), expected++);
    }
    assert.equal(queue.length, next - expected);
    if (queue.length > 0) assert.equal(queue.at(queue.length - 1), next - 1);
    assert.equal(queue.at(queue.length), undefined);
  }
  while (queue.length > 0) assert.equal(queue.shift(), expected++);
  assert.equal(queue.shift(), undefined);
  assert.equal(queue.at(0), undefined);
  queue.push(7);
  assert.equal(queue.length, 1);
  assert.equal(queue.at(0), 7);
});
