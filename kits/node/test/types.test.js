"use strict";
// index.d.ts checked by the TypeScript compiler (a devDependency: scripts/test runs `npm ci`)
// against test/types/usage.ts, which uses the package with Express's own types.

const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { it } = require("node:test");

const TSC = path.join(__dirname, "..", "node_modules", "typescript", "bin", "tsc");

it("the declarations type-check a typed usage (tsc --noEmit)", (t) => {
  if (!fs.existsSync(TSC)) {
    const message = `TypeScript is not installed (${TSC}): run npm ci in kits/node`;
    if (process.env.CI === "true") assert.fail(message);
    t.skip(message);
    return;
  }
  const done = spawnSync(process.execPath, [TSC, "-p", path.join(__dirname, "types")], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(done.status, 0, `${done.stdout}${done.stderr}`);
});
