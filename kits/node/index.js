"use strict";
/**
 * Verifies the gateway's signed context headers (context signatures v2) in a Node.js service,
 * with nothing but Node's standard library. The Python module gateway/context.py is the
 * reference; the shared vectors in kits/vectors/context-v2.json hold the two the same.
 *
 *   key   = HMAC-SHA256(secret_utf8, "gateway context v2\n" + audience)
 *   lines = ["v2", audience, method, path, timestamp] + ["name:value" for each signed header,
 *            names lower-case and sorted]
 *   X-Gateway-Signature: v2,kid=<kid>,aud=<audience>,sig=<base64url(HMAC-SHA256(key, lines
 *            joined by "\n")), no padding>
 *
 * A signature for another audience, older than 60 s or more than 5 s in the future, made with
 * a key not given, in v1, or beside a signed header sent twice is refused.
 */

const { createHmac, timingSafeEqual } = require("node:crypto");

const VERSION = "v2";
const KEY_LABEL = "gateway context v2\n";
const MAX_AGE = 60;
const MAX_FUTURE = 5;
const SIGNATURE = "x-gateway-signature";
const TIMESTAMP = "x-gateway-timestamp";
// The headers the signature covers, lower-case: the order of the signed text is theirs sorted.
const SIGNED = Object.freeze([
  "x-request-id",
  "x-auth-method",
  "x-user-id",
  "x-user-email",
  "x-user-email-verified",
  "x-user-roles",
  "x-tenant-id",
  "x-session-id",
  "x-credential-id",
]);
const SORTED = Object.freeze([...SIGNED].sort());
const ASCII = /^[\x00-\x7f]*$/;
const DIGITS = /^[0-9]+$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** The context headers cannot be trusted; `reason` says why, as a stable code. */
class ContextError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = "ContextError";
    this.reason = reason;
  }
}

/** The key that signs contexts for `audience`, from a GATEWAY_SERVICE_SECRET entry's secret. */
function deriveKey(secret, audience) {
  return createHmac("sha256", secret).update(KEY_LABEL + audience, "utf8").digest();
}

/**
 * A Map kid -> key from `gateway context-key AUDIENCE` output: `kid:<base64url key>` entries,
 * one a line or comma-separated (for an environment variable). Throws on anything else, so
 * that a service with a broken configuration stops at start-up.
 */
function parseKeys(text) {
  if (typeof text !== "string") {
    throw new TypeError("the keys must be the text `gateway context-key` printed");
  }
  const keys = new Map();
  for (const item of text.replace(/,/g, "\n").split(/\s+/)) {
    if (item === "") continue;
    const colon = item.indexOf(":");
    const kid = colon < 0 ? "" : item.slice(0, colon);
    const encoded = colon < 0 ? "" : item.slice(colon + 1);
    if (!kid || !encoded) {
      throw new Error("each entry must be kid:<base64url key>");
    }
    // Buffer.from(.., "base64url") skips what is not base64url: check the alphabet first.
    if (!BASE64URL.test(encoded) || encoded.replace(/=+$/, "").length % 4 === 1) {
      throw new Error(`the key of kid ${JSON.stringify(kid)} is not base64url`);
    }
    const key = Buffer.from(encoded, "base64url");
    if (key.length !== 32 || keys.has(kid)) {
      throw new Error(
        `the key of kid ${JSON.stringify(kid)} is not 32 bytes, or the kid appears twice`,
      );
    }
    keys.set(kid, key);
  }
  if (keys.size === 0) {
    throw new Error("no kid:<base64url key> entry");
  }
  return keys;
}

/** The key of `kid` in a Map or a plain object (its own properties only: never `__proto__`). */
function keyOf(keys, kid) {
  if (keys instanceof Map) {
    return keys.get(kid);
  }
  return Object.prototype.hasOwnProperty.call(keys, kid) ? keys[kid] : undefined;
}

/**
 * A header value as Node's HTTP parser gives it, one character a byte (latin1), read as the
 * UTF-8 text the gateway signed: `ann\u00c3\u00a9@example.com` is `ann\u00e9@example.com`.
 * Bytes that are not UTF-8 become U+FFFD, which no signature covers.
 */
function fromWire(value) {
  return ASCII.test(value) ? value : Buffer.from(value, "latin1").toString("utf8");
}

/**
 * [lower-case name, value] pairs from any of Node's header shapes: `req.rawHeaders` (a flat
 * array, every line as received, the values as Node's parser gives them: see fromWire),
 * [name, value] pairs (or any iterable of them, such as a fetch Headers), or `req.headers` (an
 * object whose values are strings or arrays of strings).
 *
 * Node joins the values of a repeated custom header with ", " in `req.headers`, and so does a
 * fetch Headers: from those a repeat cannot be told, only (as the joined value was not what was
 * signed) a mismatch. From `req.rawHeaders` or pairs it is refused as a repeat.
 */
function headerLines(headers) {
  if (headers === null || typeof headers !== "object") {
    throw new TypeError("headers must be req.rawHeaders, [name, value] pairs or req.headers");
  }
  const lines = [];
  if (Array.isArray(headers) && (headers.length === 0 || typeof headers[0] === "string")) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      lines.push([String(headers[i]).toLowerCase(), fromWire(String(headers[i + 1]))]);
    }
  } else if (typeof headers[Symbol.iterator] === "function") {
    for (const [name, value] of headers) {
      lines.push([String(name).toLowerCase(), String(value)]);
    }
  } else {
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) {
        lines.push([name.toLowerCase(), String(one)]);
      }
    }
  }
  return lines;
}

/** The text the signature is the HMAC of (its lines joined by "\n"). */
function signedText(audience, method, path, timestamp, values) {
  const lines = [VERSION, audience, method, path, timestamp];
  for (const name of SORTED) {
    if (values.has(name)) lines.push(`${name}:${values.get(name)}`);
  }
  return lines.join("\n");
}

function fields(signature) {
  const parts = signature.split(",");
  if (parts[0] === "v1") {
    throw new ContextError(
      "v1_signature",
      "a v1 signature: the gateway signs v2, with a key per upstream",
    );
  }
  if (
    parts.length !== 4 ||
    parts[0] !== VERSION ||
    !parts[1].startsWith("kid=") ||
    !parts[2].startsWith("aud=") ||
    !parts[3].startsWith("sig=")
  ) {
    throw new ContextError("no_signature", "no gateway signature");
  }
  return [parts[1].slice(4), parts[2].slice(4), parts[3].slice(4)];
}

/**
 * The context of a request to `audience` (this service's upstream name in routes.yaml) whose
 * headers carry a valid signature, made with one of `keys` (parseKeys: kid -> key of that
 * audience). `path` is the request target as received (path and query, undecoded: Express's
 * req.originalUrl). `now` is in seconds (default: the clock). Throws a ContextError otherwise.
 */
function verify({ keys, audience, method, path, headers, now }) {
  if (keys === null || typeof keys !== "object") {
    throw new TypeError("keys must be what parseKeys returns");
  }
  if (typeof audience !== "string" || audience === "") {
    throw new TypeError("audience must be this service's upstream name in routes.yaml");
  }
  const lowered = new Map();
  for (const [name, value] of headerLines(headers)) {
    if (lowered.has(name) && (SIGNED.includes(name) || name.startsWith("x-gateway-"))) {
      throw new ContextError("duplicate_header", `${name} appears more than once`);
    }
    lowered.set(name, value);
  }
  const signature = lowered.get(SIGNATURE) ?? "";
  const stamp = lowered.get(TIMESTAMP) ?? "";
  if (!ASCII.test(signature) || !ASCII.test(stamp)) {
    throw new ContextError("not_ascii", "the signature headers are not ASCII");
  }
  const [kid, signedFor, sig] = fields(signature);
  if (signedFor !== audience) {
    throw new ContextError("wrong_audience", "the signature is for another audience");
  }
  const key = keyOf(keys, kid);
  if (key === undefined) {
    throw new ContextError("unknown_key", "signed with an unknown key");
  }
  if (!DIGITS.test(stamp)) {
    throw new ContextError("no_timestamp", "no gateway timestamp");
  }
  const current = now ?? Date.now() / 1000;
  const timestamp = Number(stamp);
  if (timestamp < current - MAX_AGE || timestamp > current + MAX_FUTURE) {
    throw new ContextError("stale", "the signature is too old or from the future");
  }
  const values = new Map();
  for (const name of SIGNED) {
    if (lowered.has(name)) values.set(name, lowered.get(name));
  }
  const text = signedText(audience, String(method), String(path), stamp, values);
  const expected = Buffer.from(createHmac("sha256", key).update(text, "utf8").digest("base64url"));
  const given = Buffer.from(sig);
  // timingSafeEqual wants equal lengths; the length of a valid signature (43) is no secret.
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new ContextError("mismatch", "the signature does not match");
  }
  const roles = values.get("x-user-roles") ?? "";
  return Object.freeze({
    authMethod: values.get("x-auth-method") ?? "none",
    requestId: values.get("x-request-id") ?? null,
    userId: values.get("x-user-id") ?? null,
    email: values.get("x-user-email") ?? null,
    emailVerified: values.get("x-user-email-verified") === "true",
    roles: Object.freeze(roles.split(",").filter((role) => role !== "")),
    tenantId: values.get("x-tenant-id") ?? null,
    sessionId: values.get("x-session-id") ?? null,
    credentialId: values.get("x-credential-id") ?? null,
    timestamp,
  });
}

/**
 * An Express (or plain node:http) middleware: `req.gateway` is the verified
 * context, or the request is answered 401 application/problem+json (RFC 9457) and goes no
 * further. `keys` is what parseKeys returns, or the `gateway context-key` text itself.
 */
function expressMiddleware({ keys, audience, now }) {
  const keySet = typeof keys === "string" ? parseKeys(keys) : keys;
  if (keySet === null || typeof keySet !== "object") {
    throw new TypeError("keys must be the `gateway context-key` text or what parseKeys returns");
  }
  if (typeof audience !== "string" || audience === "") {
    throw new TypeError("audience must be this service's upstream name in routes.yaml");
  }
  // RFC 9110 (11.6.1): a 401 names the scheme it wants; the Python kits send the same.
  const challenge = `GatewayContext audience="${audience.replace(/[\\"]/g, "\\$&")}"`;
  return function gatewayContext(req, res, next) {
    let context;
    try {
      context = verify({
        keys: keySet,
        audience,
        method: req.method,
        // Express rewrites req.url under a mounted router; originalUrl is the target received.
        path: req.originalUrl ?? req.url,
        headers: req.rawHeaders,
        now: typeof now === "function" ? now() : undefined,
      });
    } catch (error) {
      if (!(error instanceof ContextError)) throw error;
      refuse(res, error, challenge);
      return;
    }
    req.gateway = context;
    next();
  };
}

function refuse(res, error, challenge) {
  const body = JSON.stringify({
    type: "urn:gateway:error:invalid_context",
    title: "Unauthorized",
    status: 401,
    detail: error.message,
    error: "invalid_context",
    reason: error.reason,
  });
  res.statusCode = 401;
  res.setHeader("Content-Type", "application/problem+json");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("WWW-Authenticate", challenge);
  res.end(body);
}

module.exports = {
  ContextError,
  MAX_AGE,
  MAX_FUTURE,
  SIGNED,
  deriveKey,
  expressMiddleware,
  parseKeys,
  signedText,
  verify,
};
