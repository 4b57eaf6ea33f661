/** Small helpers for passing values across the C boundary; shared by the bindings in this folder. */

const encoder = new TextEncoder();

/** `text` as a NUL-terminated UTF-8 buffer for a `const char *` parameter. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  if (text.includes("\0")) throw new TypeError(`string passed to C contains NUL: ${JSON.stringify(text)}`);
  return encoder.encode(`${text}\0`);
}

/** The NUL-terminated text at the start of `buffer` (an error buffer filled by C). */
export function textBefore(buffer: Uint8Array): string {
  const end = buffer.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buffer : buffer.subarray(0, end));
}

/** The text a returned `char *` points to, or `""` for NULL. */
export function readCString(pointer: Deno.PointerValue): string {
  return pointer === null ? "" : Deno.UnsafePointerView.getCString(pointer);
}

/** `sizes[n]` is `BigInt(n)`, made once: Deno's fast FFI path needs a BigInt for `size_t`. */
const sizes: bigint[] = [];

/**
 * `length` as a `size_t` argument. A plain number would push every call onto Deno's slow FFI path
 * (several times slower); a fresh BigInt would allocate per call. Packet lengths are small, so keep one
 * BigInt per length seen.
 */
export function size(length: number): bigint {
  while (sizes.length <= length) sizes.push(BigInt(sizes.length));
  return sizes[length];
}
