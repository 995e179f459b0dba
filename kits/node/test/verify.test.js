"use strict";
// verify(), parseKeys() and deriveKey() on their own: the README's worked example, then one
// table of refusals, each with the reason it must give.

const assert = require("node:assert/strict");
const { createHmac } = require("node:crypto");
const { describe, it } = require("node:test");

const { ContextError, deriveKey, parseKeys, verify } = require("..");

// The gateway README's worked example ("Context headers to upstreams").
const SECRET = "worked-example-secret-not-for-production";
const KEY_HEX = "e202f22576c1ced95875215f6a6ccc495147d6bd4ceb019bf17419b48eea60cc";
const KEY_LINE = "k1:4gLyJXbBztlYdSFfamzMSVFH1r1M6wGb8XQZtI7qYMw";
const SIGNATURE = "v2,kid=k1,aud=billing,sig=2YQhX1_Z9-AIzPjAm_UibfnxfyT_JXSb5ywtj5QUpm4";
const STAMP = 1767225600;
const HEADERS = [
  ["X-Request-Id", "req-7f3a"],
  ["X-Auth-Method", "jwt"],
  ["X-User-Id", "usr_42"],
  ["X-User-Email", "ann@example.com"],
  ["X-User-Email-Verified", "true"],
  ["X-User-Roles", "user,admin"],
  ["X-Session-Id", "ses_9"],
  ["X-Gateway-Timestamp", String(STAMP)],
  ["X-Gateway-Signature", SIGNATURE],
];
const KEYS = parseKeys(KEY_LINE);

function example(changes = {}) {
  return { keys: KEYS, audience: "billing", method: "POST", path: "/invoices?page=2",
    headers: HEADERS, now: STAMP, ...changes };
}

function replaced(name, value) {
  return HEADERS.map(([n, v]) => [n, n === name ? value : v]);
}

/** A signature made here with the key, as the gateway would make it, for `lines` after "v2". */
function signedBy(key, lines) {
  return createHmac("sha256", key).update(["v2", ...lines].join("\n")).digest("base64url");
}

describe("the worked example", () => {
  it("derives the key of billing", () => {
    assert.equal(Buffer.from(deriveKey(SECRET, "billing")).toString("hex"), KEY_HEX);
    assert.equal(Buffer.from(deriveKey(Buffer.from(SECRET), "billing")).toString("hex"), KEY_HEX);
    assert.equal(Buffer.from(KEYS.get("k1")).toString("hex"), KEY_HEX);
  });

  it("verifies to the context", () => {
    assert.deepEqual({ ...verify(example()) }, {
      authMethod: "jwt",
      requestId: "req-7f3a",
      userId: "usr_42",
      email: "ann@example.com",
      emailVerified: true,
      roles: ["user", "admin"],
      tenantId: null,
      sessionId: "ses_9",
      credentialId: null,
      timestamp: 1767225600,
    });
  });

  it("gives a frozen context", () => {
    const context = verify(example());
    assert.ok(Object.isFrozen(context) && Object.isFrozen(context.roles));
  });

  it("verifies with any header case and from every header shape", () => {
    const upper = HEADERS.map(([n, v]) => [n.toUpperCase(), v]);
    const flat = HEADERS.flat();
    const object = Object.fromEntries(HEADERS.map(([n, v]) => [n.toLowerCase(), v]));
    for (const headers of [upper, flat, object, new Map(HEADERS)]) {
      assert.equal(verify(example({ headers })).userId, "usr_42");
    }
  });

  it("holds within 60 s after and 5 s before the timestamp, not beyond", () => {
    for (const now of [STAMP + 60, STAMP - 5, STAMP + 0.5]) {
      assert.equal(verify(example({ now })).timestamp, STAMP);
    }
    for (const now of [STAMP + 60.001, STAMP + 61, STAMP - 5.5, STAMP - 6]) {
      assert.throws(() => verify(example({ now })), { name: "ContextError", reason: "stale" });
    }
  });

  it("takes the clock when no `now` is given", () => {
    assert.throws(() => verify(example({ now: undefined })), { reason: "stale" });
    const key = KEYS.get("k1");
    const stamp = String(Math.floor(Date.now() / 1000));
    const sig = signedBy(key, ["billing", "GET", "/", stamp]);
    const headers = [["X-Gateway-Timestamp", stamp],
      ["X-Gateway-Signature", `v2,kid=k1,aud=billing,sig=${sig}`]];
    const context = verify({ keys: KEYS, audience: "billing", method: "GET", path: "/", headers });
    assert.equal(context.authMethod, "none");
    assert.equal(context.userId, null);
    assert.deepEqual(context.roles, []);
  });
});

const REFUSALS = [
  // [description, changes to the example, reason]
  ["no headers at all", { headers: [] }, "no_signature"],
  ["another audience asked", { audience: "orders" }, "wrong_audience"],
  ["another method", { method: "GET" }, "mismatch"],
  ["another path", { path: "/invoices?page=3" }, "mismatch"],
  ["the path without its query", { path: "/invoices" }, "mismatch"],
  ["a user id changed", { headers: replaced("X-User-Id", "usr_1") }, "mismatch"],
  ["a role added", { headers: replaced("X-User-Roles", "user,admin,root") }, "mismatch"],
  ["a signed header removed", { headers: HEADERS.filter(([n]) => n !== "X-Session-Id") },
    "mismatch"],
  ["a signed header added", { headers: [...HEADERS, ["X-Tenant-Id", "ten_1"]] }, "mismatch"],
  ["the timestamp changed", { headers: replaced("X-Gateway-Timestamp", String(STAMP + 1)) },
    "mismatch"],
  ["a signature one character short",
    { headers: replaced("X-Gateway-Signature", SIGNATURE.slice(0, -1)) }, "mismatch"],
  ["a padded signature", { headers: replaced("X-Gateway-Signature", `${SIGNATURE}=`) },
    "mismatch"],
  ["another key", { keys: parseKeys(`k1:${"A".repeat(43)}`) }, "mismatch"],
  ["an unknown kid", { keys: parseKeys(KEY_LINE.replace("k1", "k2")) }, "unknown_key"],
  ["a kid from Object.prototype",
    { headers: replaced("X-Gateway-Signature", SIGNATURE.replace("kid=k1", "kid=constructor")),
      keys: { k1: KEYS.get("k1") } }, "unknown_key"],
  ["a v1 signature", { headers: replaced("X-Gateway-Signature", "v1,kid=k1,sig=abc") },
    "v1_signature"],
  ["a v3 signature", { headers: replaced("X-Gateway-Signature", SIGNATURE.replace("v2", "v3")) },
    "no_signature"],
  ["a field missing", { headers: replaced("X-Gateway-Signature", "v2,kid=k1,sig=abc") },
    "no_signature"],
  ["fields out of order",
    { headers: replaced("X-Gateway-Signature", "v2,aud=billing,kid=k1,sig=abc") },
    "no_signature"],
  ["a relabelled audience",
    { headers: replaced("X-Gateway-Signature", SIGNATURE.replace("aud=billing", "aud=orders")),
      audience: "orders", keys: new Map([["k1", deriveKey(SECRET, "orders")]]) }, "mismatch"],
  ["no timestamp", { headers: HEADERS.filter(([n]) => n !== "X-Gateway-Timestamp") },
    "no_timestamp"],
  ["a negative timestamp", { headers: replaced("X-Gateway-Timestamp", `-${STAMP}`) },
    "no_timestamp"],
  ["a fractional timestamp", { headers: replaced("X-Gateway-Timestamp", `${STAMP}.0`) },
    "no_timestamp"],
  ["a timestamp of 400 digits", { headers: replaced("X-Gateway-Timestamp", "9".repeat(400)) },
    "stale"],
  ["a non-ASCII signature",
    { headers: replaced("X-Gateway-Signature", `${SIGNATURE.slice(0, -1)}\u00e9`) }, "not_ascii"],
  ["a non-ASCII timestamp", { headers: replaced("X-Gateway-Timestamp", "\u0661\u0662") },
    "not_ascii"],
  ["a signed header twice", { headers: [...HEADERS, ["x-user-id", "usr_admin"]] },
    "duplicate_header"],
  ["a signed header twice, the same value", { headers: [...HEADERS, ["X-USER-ID", "usr_42"]] },
    "duplicate_header"],
  ["the signature twice", { headers: [["X-Gateway-Signature", "x"], ...HEADERS] },
    "duplicate_header"],
  ["the timestamp twice", { headers: [...HEADERS.flat(), "x-gateway-timestamp", "1"] },
    "duplicate_header"],
  ["a signed header twice in req.headers' array form",
    { headers: { ...Object.fromEntries(HEADERS), "X-User-Roles": ["user", "admin"] } },
    "duplicate_header"],
  ["a repeat that Node joined with a comma",
    { headers: replaced("X-User-Id", "usr_42, usr_admin") }, "mismatch"],
];

describe("refusals", () => {
  for (const [description, changes, reason] of REFUSALS) {
    it(description, () => {
      assert.throws(() => verify(example(changes)), (error) => {
        assert.ok(error instanceof ContextError);
        assert.ok(error instanceof Error);
        assert.equal(error.name, "ContextError");
        assert.equal(error.reason, reason, error.message);
        return true;
      });
    });
  }

  it("lets an unsigned header repeat", () => {
    const headers = [...HEADERS, ["Accept", "a"], ["accept", "b"]];
    assert.equal(verify(example({ headers })).userId, "usr_42");
  });

  it("tells what is wrong in its message", () => {
    assert.throws(() => verify(example({ audience: "orders" })),
      { message: "the signature is for another audience" });
    assert.throws(() => verify(example({ headers: [...HEADERS, ["X-User-Id", "x"]] })),
      { message: "x-user-id appears more than once" });
  });

  it("refuses bad arguments as a TypeError, not a ContextError", () => {
    assert.throws(() => verify(example({ keys: null })), TypeError);
    assert.throws(() => verify(example({ audience: "" })), TypeError);
    assert.throws(() => verify(example({ headers: "X-User-Id: a" })), TypeError);
  });
});

describe("parseKeys", () => {
  const other = `k0:${Buffer.alloc(32, 7).toString("base64url")}`;

  it("reads lines, commas and whitespace", () => {
    for (const text of [`${KEY_LINE}\n${other}\n`, `${KEY_LINE},${other}`, ` ${KEY_LINE} , ${other}`]) {
      const keys = parseKeys(text);
      assert.deepEqual([...keys.keys()], ["k1", "k0"]);
      assert.equal(Buffer.from(keys.get("k0")).toString("hex"), "07".repeat(32));
    }
  });

  it("takes a padded key", () => {
    assert.equal(Buffer.from(parseKeys(`${KEY_LINE}=`).get("k1")).toString("hex"), KEY_HEX);
  });

  const BAD = [
    ["empty", "", "no kid:<base64url key> entry"],
    ["only separators", " ,\n, ", "no kid:<base64url key> entry"],
    ["no colon", "k1", "each entry must be kid:<base64url key>"],
    ["no kid", `:${KEY_LINE.slice(3)}`, "each entry must be kid:<base64url key>"],
    ["no key", "k1:", "each entry must be kid:<base64url key>"],
    ["standard base64 with a dot", "k1:4gLy.Xb", 'the key of kid "k1" is not base64url'],
    ["a short key", "k1:AAAA", 'the key of kid "k1" is not 32 bytes, or the kid appears twice'],
    ["a kid twice", `${KEY_LINE},${KEY_LINE}`,
      'the key of kid "k1" is not 32 bytes, or the kid appears twice'],
  ];
  for (const [description, text, message] of BAD) {
    it(`refuses ${description}`, () => {
      assert.throws(() => parseKeys(text), { message });
    });
  }

  it("never says the key in its message", () => {
    const secretish = `${KEY_LINE.slice(3, 30)}!!`;
    assert.throws(() => parseKeys(`k1:${secretish}`), (error) => !error.message.includes(secretish));
  });
});
