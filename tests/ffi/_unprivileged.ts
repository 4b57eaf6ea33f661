/** Runs code in a Deno without capture or raw-socket privileges, whoever runs the tests. */

const NOBODY = 65534;

/**
 * Runs `script` with `deno eval`, as nobody with no capabilities when we are root, and hands the child to
 * `use`. Its Deno cache is a throwaway directory, removed afterwards.
 */
export async function withUnprivilegedDeno<T>(
  script: string,
  stdin: "piped" | "null",
  use: (child: Deno.ChildProcess) => Promise<T>,
): Promise<T> {
  const denoDir = await Deno.makeTempDir({ prefix: "tsffi-deno-" });
  try {
    const root = await isRoot();
    if (root) await Deno.chown(denoDir, NOBODY, NOBODY);
    const deno = ["eval", "--quiet", script];
    const child = new Deno.Command(root ? "setpriv" : Deno.execPath(), {
      args: root
        ? [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          "--clear-groups",
          "--inh-caps=-all",
          Deno.execPath(),
          ...deno,
        ]
        : deno,
      env: { DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: "1" },
      stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return await use(child);
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
}

/** The trimmed stdout of `child`, which must exit with status 0. */
export async function outputOf(child: Deno.ChildProcess): Promise<string> {
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`child failed (${code}): ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout).trim();
}

/** Asks `id` rather than `Deno.uid()`, which would need --allow-sys. */
async function isRoot(): Promise<boolean> {
  const { stdout } = await new Deno.Command("id", { args: ["-u"] }).output();
  return new TextDecoder().decode(stdout).trim() === "0";
}
