/**
 * The next connection `server` accepts, or a failure after `ms`: a connect never made never arrives, and a
 * test waiting for it fails instead of hanging.
 */
export async function acceptWithin(server: Deno.Listener, ms: number): Promise<Deno.Conn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return await Promise.race([
    server.accept(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection reached the target in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
