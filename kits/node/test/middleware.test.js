"use strict";
// expressMiddleware on a real node:http server on loopback: req.gateway for a valid context,
// 401 application/problem+json otherwise, duplicates seen on the wire refused.

const assert = require("node:assert/strict");
const { createHmac } = require("node:crypto");
const http = require("node:http");
const { after, before, describe, it } = require("node:test");

const { deriveKey, expressMiddleware } = require("..");

const SECRET = "kit-test-secret";
const KEY = deriveKey(SECRET, "billing");
const KEYS_TEXT = `k1:${Buffer.from(KEY).toString("base64url")}`;

function signed(method, target, values, stamp = Math.floor(Date.now() / 1000)) {
  const names = Object.keys(values).sort();
  const text = ["v2", "billing", method, target, String(stamp), ...names.map((n) => `${n}:${values[n]}`)]
    .join("\n");
  const sig = createHmac("sha256", KEY).update(text).digest("base64url");
  return { ...values, "x-gateway-timestamp": String(stamp),
    "x-gateway-signature": `v2,kid=k1,aud=billing,sig=${sig}` };
}

const USER = { "x-auth-method": "jwt", "x-user-id": "usr_7", "x-user-roles": "user,admin",
  "x-request-id": "req-1" };

let server;
let port;
const reached = [];

before(async () => {
  const middleware = expressMiddleware({ keys: KEYS_TEXT, audience: "billing" });
  server = http.createServer((req, res) => {
    middleware(req, res, () => {
      reached.push(req.url);
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify(req.gateway));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = server.address().port;
});

after(() => new Promise((resolve) => server.close(resolve)));

/** One request; `headers` values may be arrays (sent as that many header lines). */
function request(method, target, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: target, headers,
      agent: false }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

function assertRefused(answer, reason) {
  assert.equal(answer.status, 401, answer.body);
  assert.equal(answer.headers["content-type"], "application/problem+json");
  assert.equal(answer.headers["cache-control"], "no-store");
  assert.equal(answer.headers["www-authenticate"], 'GatewayContext audience="billing"');
  const problem = JSON.parse(answer.body);
  assert.deepEqual(
    [problem.type, problem.status, problem.error, problem.reason],
    ["urn:gateway:error:invalid_context", 401, "invalid_context", reason],
  );
  assert.equal(typeof problem.detail, "string");
  assert.ok(!answer.body.includes("at "), "no stack trace");
}

describe("expressMiddleware on node:http", () => {
  it("sets req.gateway for a valid context", async () => {
    const answer = await request("GET", "/invoices?page=2", signed("GET", "/invoices?page=2", USER));
    assert.equal(answer.status, 200, answer.body);
    const context = JSON.parse(answer.body);
    assert.equal(context.userId, "usr_7");
    assert.deepEqual(context.roles, ["user", "admin"]);
    assert.equal(context.requestId, "req-1");
  });

  it("signs the target undecoded, as received", async () => {
    const target = "/files/a%20b?q=caf%C3%A9";
    const answer = await request("PUT", target, signed("PUT", target, USER));
    assert.equal(answer.status, 200, answer.body);
  });

  it("reads header values as the UTF-8 the gateway signed, not as Node's latin1", async () => {
    const values = { ...USER, "x-user-email": "ann\u00e9@exampl\u00eb.com" };
    const headers = signed("GET", "/me", values);
    // Sent as UTF-8 bytes (node:http would write a string header as latin1).
    headers["x-user-email"] = Buffer.from(values["x-user-email"], "utf8").toString("latin1");
    const answer = await request("GET", "/me", headers);
    assert.equal(answer.status, 200, answer.body);
    assert.equal(JSON.parse(answer.body).email, "ann\u00e9@exampl\u00eb.com");
  });

  it("refuses header bytes that are not UTF-8", async () => {
    const headers = signed("GET", "/me", { ...USER, "x-user-email": "ann\u00e9@example.com" });
    headers["x-user-email"] = "ann\u00e9@example.com"; // one byte 0xe9: latin1, not UTF-8
    assertRefused(await request("GET", "/me", headers), "mismatch");
  });

  it("answers 401 without a signature and never calls next", async () => {
    const before = reached.length;
    assertRefused(await request("GET", "/invoices", {}), "no_signature");
    assert.equal(reached.length, before);
  });

  it("answers 401 for a context replayed to another path", async () => {
    assertRefused(await request("GET", "/admin", signed("GET", "/invoices", USER)), "mismatch");
  });

  it("answers 401 for an expired context", async () => {
    const old = Math.floor(Date.now() / 1000) - 120;
    assertRefused(await request("GET", "/x", signed("GET", "/x", USER, old)), "stale");
  });

  it("answers 401 for a signed header sent twice on the wire", async () => {
    const headers = signed("GET", "/x", USER);
    headers["x-user-id"] = ["usr_7", "usr_admin"];
    assertRefused(await request("GET", "/x", headers), "duplicate_header");
  });

  it("answers 401 for a second signature line", async () => {
    const headers = signed("GET", "/x", USER);
    headers["x-gateway-signature"] = [headers["x-gateway-signature"], "v2,kid=k1,aud=billing,sig=x"];
    assertRefused(await request("GET", "/x", headers), "duplicate_header");
  });

  it("refuses a broken configuration when it is made, not per request", () => {
    assert.throws(() => expressMiddleware({ keys: "k1:AAAA", audience: "billing" }),
      { message: 'the key of kid "k1" is not 32 bytes, or the kid appears twice' });
    assert.throws(() => expressMiddleware({ keys: undefined, audience: "billing" }), TypeError);
    assert.throws(() => expressMiddleware({ keys: KEYS_TEXT, audience: "" }), TypeError);
  });
});
