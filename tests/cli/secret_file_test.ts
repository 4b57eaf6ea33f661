import assert from "node:assert/strict";
import { readSecretFile } from "../../src/cli/secret_file.ts";
import { UsageError } from "../../src/errors.ts";

async function withFile(text: string, mode: number, fn: (path: string) => void): Promise<void> {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, text);
    await Deno.chmod(path, mode);
    fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("a secret file's trailing newline is not part of the secret", async () => {
  await withFile("correct horse battery staple\r\n", 0o600, (path) => {
    assert.equal(
      new TextDecoder().decode(readSecretFile("--secret-file", path)),
      "correct horse battery staple",
    );
  });
});

Deno.test("a secret file readable by every user is refused, one only its group reads is taken", async () => {
  await withFile("correct horse battery staple\n", 0o644, (path) => {
    assert.throws(() => readSecretFile("--secret-file", path), (error) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /^--secret-file: .* is readable by every user \(mode 644\)/);
      return true;
    });
  });
  await withFile("correct horse battery staple\n", 0o640, (path) => {
    assert.equal(readSecretFile("--secret-file", path).length, 28);
  });
});

Deno.test("a secret under 16 bytes (newline aside) is refused", async () => {
  await withFile("fifteen bytes!!\n", 0o600, (path) => {
    assert.throws(() => readSecretFile("--secret-file", path), /holds 15 bytes; a secret needs at least 16/);
  });
  await withFile("sixteen bytes!!!", 0o600, (path) => {
    assert.equal(readSecretFile("--secret-file", path).length, 16);
  });
});

Deno.test("a secret file that cannot be read is a usage error naming it", () => {
  assert.throws(() => readSecretFile("--secret-file", "/nonexistent/secret"), (error) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.message, /^--secret-file: cannot read \/nonexistent\/secret: /);
    return true;
  });
});
