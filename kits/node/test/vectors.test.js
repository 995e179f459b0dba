"use strict";
// The shared test vectors (kits/vectors/context-v2.json), made by the Python reference
// (gateway/context.py): every case must come out here as it does there, so that the verifiers
// cannot drift apart.

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { describe, it } = require("node:test");

const { ContextError, parseKeys, verify } = require("..");

const FILE = path.join(__dirname, "..", "..", "vectors", "context-v2.json");
const vectors = JSON.parse(fs.readFileSync(FILE, "utf8"));

/** The reference's Context (snake_case fields) in this package's names. */
function asReference(context) {
  return {
    auth_method: context.authMethod,
    request_id: context.requestId,
    user_id: context.userId,
    email: context.email,
    email_verified: context.emailVerified,
    roles: [...context.roles],
    tenant_id: context.tenantId,
    session_id: context.sessionId,
    credential_id: context.credentialId,
    timestamp: context.timestamp,
  };
}

/**
 * The same headers as Node's HTTP parser hands them over in req.rawHeaders: flat, each value's
 * UTF-8 bytes one latin1 character each.
 */
function asRaw(headers) {
  return headers.flatMap(([name, value]) => [name, Buffer.from(value, "utf8").toString("latin1")]);
}

describe(`shared vectors (${path.relative(process.cwd(), FILE)})`, () => {
  const keys = parseKeys(vectors.keys);

  it("has cases of both outcomes", () => {
    assert.ok(vectors.cases.some((c) => c.valid), "no valid case");
    assert.ok(vectors.cases.some((c) => !c.valid), "no refused case");
  });

  for (const vector of vectors.cases) {
    it(vector.description, () => {
      const options = {
        keys,
        audience: vectors.audience,
        method: vector.method,
        path: vector.path,
        headers: vector.headers,
        now: vectors.now,
      };
      if (vector.valid) {
        assert.deepEqual(asReference(verify(options)), vector.context);
        assert.deepEqual(asReference(verify({ ...options, headers: asRaw(vector.headers) })),
          vector.context);
      } else {
        assert.throws(() => verify(options), ContextError);
        assert.throws(() => verify({ ...options, headers: asRaw(vector.headers) }), ContextError);
      }
    });
  }
});
