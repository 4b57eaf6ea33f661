/**
 * The shared-secret challenge-response of `Capability.AUTH` (`--secret-file` on both sides): each side
 * proves it holds the secret with an HMAC-SHA256 over both sides' nonces and a label naming its direction,
 * so the secret never crosses the wire and no proof can be replayed or reflected. `docs/protocol.md` has
 * the exchange and its byte layouts.
 *
 * 1. copy's extended hello asks for `Capability.AUTH`.
 * 2. intercept: `ACCEPTED` granting it, then `AUTH_CHALLENGE` with its 16-byte nonce.
 * 3. copy: an `AUTH_RESPONSE` extension record: its own 16-byte nonce, then
 *    HMAC(secret, intercept nonce ‖ copy nonce ‖ "tcpshadow copy").
 * 4. intercept checks it, and answers `AUTH_PROOF`: HMAC(secret, intercept nonce ‖ copy nonce ‖
 *    "tcpshadow intercept"). Only then may copy register clients, and only then does copy send any.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Bytes of each side's nonce. */
export const AUTH_NONCE_LENGTH = 16;
/** Bytes of an HMAC-SHA256. */
export const AUTH_MAC_LENGTH = 32;
/** Bytes of the `AUTH_RESPONSE` record's body: copy's nonce, then its MAC. */
export const AUTH_RESPONSE_LENGTH = AUTH_NONCE_LENGTH + AUTH_MAC_LENGTH;
/** The fewest bytes a secret file must hold. */
export const MIN_SECRET_LENGTH = 16;

/** Which side a MAC proves: each signs its own label, so one side's proof is never the other's. */
export type AuthSide = "copy" | "intercept";

const LABELS: Record<AuthSide, Uint8Array> = {
  copy: new TextEncoder().encode("tcpshadow copy"),
  intercept: new TextEncoder().encode("tcpshadow intercept"),
};

/** A fresh random nonce. */
export function authNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(AUTH_NONCE_LENGTH));
}

/** HMAC-SHA256(secret, interceptNonce ‖ copyNonce ‖ side's label): what `side` sends as its proof. */
export function authMac(
  secret: Uint8Array,
  interceptNonce: Uint8Array,
  copyNonce: Uint8Array,
  side: AuthSide,
): Uint8Array {
  const hmac = createHmac("sha256", secret);
  hmac.update(interceptNonce);
  hmac.update(copyNonce);
  hmac.update(LABELS[side]);
  return new Uint8Array(hmac.digest());
}

/** Whether `proof` is `side`'s MAC over the two nonces, compared in constant time. */
export function authProofValid(
  secret: Uint8Array,
  interceptNonce: Uint8Array,
  copyNonce: Uint8Array,
  side: AuthSide,
  proof: Uint8Array,
): boolean {
  if (proof.length !== AUTH_MAC_LENGTH) return false;
  return timingSafeEqual(authMac(secret, interceptNonce, copyNonce, side), proof);
}

/** copy's `AUTH_RESPONSE` body: its nonce and its MAC. */
export interface AuthResponse {
  readonly copyNonce: Uint8Array;
  readonly mac: Uint8Array;
}

/** The body of copy's `AUTH_RESPONSE` record. */
export function encodeAuthResponse(response: AuthResponse): Uint8Array {
  const body = new Uint8Array(AUTH_RESPONSE_LENGTH);
  body.set(response.copyNonce, 0);
  body.set(response.mac, AUTH_NONCE_LENGTH);
  return body;
}

/** Reads an `AUTH_RESPONSE` body (copied out of the decoder's buffer); `undefined` if it has the wrong size. */
export function decodeAuthResponse(body: Uint8Array): AuthResponse | undefined {
  if (body.length !== AUTH_RESPONSE_LENGTH) return undefined;
  return { copyNonce: body.slice(0, AUTH_NONCE_LENGTH), mac: body.slice(AUTH_NONCE_LENGTH) };
}
