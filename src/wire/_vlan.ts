/** 802.1Q / 802.1ad tag skipping shared by the Ethernet and Linux cooked views; internal to `src/wire`. */
import { read16 } from "./bytes.ts";
import { type WireError, wireError } from "./errors.ts";

/** Bytes one tag adds in front of the type field: the TCI and the inner type. */
const VLAN_TAG_LENGTH = 4;
const TPID_8021Q = 0x8100;
const TPID_8021AD = 0x88a8;
const TPID_QINQ_OLD = 0x9100;

function isVlanTpid(type: number): boolean {
  return type === TPID_8021Q || type === TPID_8021AD || type === TPID_QINQ_OLD;
}

/** Index of the type field that names the payload, after up to two tags starting at `typeAt`. */
export function innerTypeFieldAt(bytes: Uint8Array, typeAt: number): number {
  if (isVlanTpid(read16(bytes, typeAt))) {
    typeAt += VLAN_TAG_LENGTH;
    if (isVlanTpid(read16(bytes, typeAt))) typeAt += VLAN_TAG_LENGTH;
  }
  return typeAt;
}

/** Number of tags between `typeAt` and the inner type field. */
export function vlanTagCount(bytes: Uint8Array, typeAt: number): number {
  return (innerTypeFieldAt(bytes, typeAt) - typeAt) / VLAN_TAG_LENGTH;
}

/** Checks that the tags and the inner type field starting at `typeAt` are in `bytes`: at most two tags. */
export function checkVlanTags(bytes: Uint8Array, typeAt: number, layer: string): WireError | undefined {
  const at = innerTypeFieldAt(bytes, typeAt);
  if (at + 2 > bytes.length) return wireError("truncated", `${layer} VLAN tags cut short`);
  if (isVlanTpid(read16(bytes, at))) {
    return wireError("unsupported", `${layer} frame with more than two VLAN tags`);
  }
  return undefined;
}
