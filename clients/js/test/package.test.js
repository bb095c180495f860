/**
 * The package as npm ships it: its files, no runtime dependencies, and declarations that type-check
 * the documented usage (test/types/usage.ts) with TypeScript in strict mode, without DOM types.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8"));

test("ESM with no runtime dependencies, its entry points exist", async () => {
  assert.equal(manifest.type, "module");
  assert.equal(manifest.dependencies, undefined);
  assert.equal(manifest.peerDependencies, undefined);
  assert.equal(manifest.exports["."].default, "./dropsync.js");
  assert.equal(manifest.exports["."].types, "./dropsync.d.ts");
  const entry = await import(join(PACKAGE, manifest.exports["."].default));
  assert.equal(typeof entry.DropsyncClient, "function");
});

test("npm pack ships the client, its declarations and the README", () => {
  const [packed] = JSON.parse(
    execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: PACKAGE, encoding: "utf8" }),
  );
  const files = packed.files.map((file) => file.path).sort();
  assert.deepEqual(files, ["README.md", "dropsync.d.ts", "dropsync.js", "package.json"]);
  const client = packed.files.find((file) => file.path === "dropsync.js");
  assert.ok(client.size > 10000, "the real file, not a symlink left out");
});

test("the declarations type-check the documented usage (tsc --strict, no DOM)", () => {
  const tsc = join(PACKAGE, "node_modules", "typescript", "bin", "tsc");
  assert.ok(existsSync(tsc), "TypeScript is missing: run `npm ci` in clients/js");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(PACKAGE, "tsconfig.json")], { cwd: PACKAGE, encoding: "utf8" });
  } catch (error) {
    assert.fail(`tsc found errors:\n${error.stdout}${error.stderr}`);
  }
});

test("every event type the client knows is declared, and no other", async () => {
  const { EVENT_TYPES } = await import(join(PACKAGE, "dropsync.js"));
  const declarations = readFileSync(join(PACKAGE, "dropsync.d.ts"), "utf8");
  const block = declarations.slice(declarations.indexOf("export interface EventData"));
  const declared = [...block.slice(0, block.indexOf("\n}")).matchAll(/^  ([a-z_]+):/gm)].map((match) => match[1]);
  assert.deepEqual([...declared].sort(), [...EVENT_TYPES].sort());
});
