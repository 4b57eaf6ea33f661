/**
 * The two failures a user can meet. `main.ts` prints either as one line `tcpshadow: <message>`;
 * anything else that escapes is a bug of ours.
 */

/** The user asked for something that cannot work (bad flag, bad value): exit 2 with a `--help` hint. */
export class UsageError extends Error {}

/** The command was right but the world was not (no libpcap, no privileges, a dead peer): exit 1. */
export class FatalError extends Error {}

/** What a caught value says: an error's message, or the value itself as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
