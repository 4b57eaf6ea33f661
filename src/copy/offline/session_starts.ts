/** Which packets of a file start a session, by the session table's rule, for a file read on its own. */
import { sessionIsn, startsSession } from "../../session/mod.ts";
import { type Address, type EndpointKey, endpointKey } from "../../wire/mod.ts";

/** Tells which packets start a session, by the session table's rule, for a file read on its own. */
export class SessionStarts {
  /** ISNs by server port, then by client address and port (`endpointKey`). */
  readonly #isns = new Map<number, Map<EndpointKey, number>>();

  /** Whether this packet from `source` starts a session. */
  observe(
    source: Address,
    tcp: {
      readonly srcPort: number;
      readonly dstPort: number;
      readonly seq: number;
      readonly flags: number;
      readonly payloadLength: number;
    },
  ): boolean {
    let isns = this.#isns.get(tcp.dstPort);
    if (isns === undefined) {
      isns = new Map();
      this.#isns.set(tcp.dstPort, isns);
    }
    const key = endpointKey(source, tcp.srcPort);
    if (!startsSession(isns.get(key), tcp)) return false;
    isns.set(key, sessionIsn(tcp));
    return true;
  }
}
