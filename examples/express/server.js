"use strict";
// A minimal Express service behind the gateway: it validates no token and keeps no sessions.
// The gateway authenticates the caller and signs who it is (X-User-Id, X-User-Roles, ...);
// @gateway/context checks that signature and puts the caller in req.gateway.
//
//   GATEWAY_CONTEXT_KEYS  the output of `gateway context-key billing` (lines or commas)
//   GATEWAY_AUDIENCE      this service's upstream name in the gateway's routes.yaml (billing)
//   HOST, PORT            where to listen (127.0.0.1, 3000; PORT=0: any free port)

const { STATUS_CODES } = require("node:http");
const express = require("express");
const { expressMiddleware } = require("@gateway/context");

const audience = process.env.GATEWAY_AUDIENCE || "billing";
const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT ?? 3000);

function fail(message) {
  console.error(`express example: ${message}`);
  process.exit(2);
}

if (!process.env.GATEWAY_CONTEXT_KEYS) {
  fail(`set GATEWAY_CONTEXT_KEYS to the output of \`gateway context-key ${audience}\``);
}
let gatewayContext;
try {
  gatewayContext = expressMiddleware({ keys: process.env.GATEWAY_CONTEXT_KEYS, audience });
} catch (error) {
  fail(`GATEWAY_CONTEXT_KEYS: ${error.message}`);
}

/** An RFC 9457 problem document, the way the gateway answers its own refusals. */
function problem(res, status, error, detail) {
  res.status(status).type("application/problem+json").json({
    type: `urn:gateway:error:${error}`, title: STATUS_CODES[status], status, detail, error,
  });
}

/** Only callers the gateway says have `role` (X-User-Roles). */
function requireRole(role) {
  return (req, res, next) => {
    if (req.gateway.roles.includes(role)) return next();
    return problem(res, 403, "forbidden", `the role ${role} is needed`);
  };
}

/** Only requests with a user (a route with `auth: none` lets anonymous callers through). */
function requireUser(req, res, next) {
  if (req.gateway.userId !== null) return next();
  return problem(res, 401, "missing_user", "this endpoint needs a signed-in user");
}

const invoices = new Map(); // userId -> [{id, amount}]

const app = express();
app.disable("x-powered-by");
app.use(gatewayContext); // every route below: req.gateway is set, or the request got 401
app.use(express.json());

app.get("/me", (req, res) => {
  res.json(req.gateway);
});

app.get("/invoices", requireUser, (req, res) => {
  res.json({ owner: req.gateway.userId, invoices: invoices.get(req.gateway.userId) ?? [] });
});

app.post("/invoices", requireUser, (req, res) => {
  const amount = Number(req.body?.amount);
  if (!Number.isFinite(amount) || amount <= 0) {
    return problem(res, 400, "invalid_request", "amount must be a positive number");
  }
  const mine = invoices.get(req.gateway.userId) ?? [];
  const invoice = { id: `inv_${mine.length + 1}`, amount };
  invoices.set(req.gateway.userId, [...mine, invoice]);
  return res.status(201).json(invoice);
});

app.delete("/invoices", requireRole("admin"), (req, res) => {
  invoices.clear();
  res.status(204).end();
});

app.use((req, res) => problem(res, 404, "not_found", "no such endpoint"));
// Express's own error page shows the stack trace outside production: never to a client.
app.use((error, req, res, next) => {
  const status = Number.isInteger(error.status) && error.status < 500 ? error.status : 500;
  if (status === 500) console.error(`express example: ${error.message}`);
  problem(res, status, status === 500 ? "internal_error" : "invalid_request",
    status === 500 ? "the service failed" : "the request could not be read");
});

const server = app.listen(port, host, () => {
  const { address, port: bound } = server.address();
  console.log(`listening on http://${address}:${bound} as ${audience}`);
});
server.on("error", (error) => fail(error.message));
