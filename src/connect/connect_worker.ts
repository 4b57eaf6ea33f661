/**
 * The worker thread of `ConnectQueue` (`connect_queue.ts`): told the queue once, it makes the connects
 * queued until told to stop.
 */
/// <reference lib="deno.worker" />
import { type ConnectQueueStart, makeQueuedConnects } from "./connect_queue.ts";

self.onmessage = (event: MessageEvent<ConnectQueueStart>) => {
  makeQueuedConnects(event.data);
  self.close();
};
