// Compiled with `tsc --noEmit` by types.test.js: the declarations in index.d.ts fit how a
// TypeScript service uses the package, Express's own types included. Never run.
import express from "express";
import type { Request, Response } from "express";
import {
  ContextError,
  deriveKey,
  expressMiddleware,
  parseKeys,
  verify,
  type Context,
  type ContextErrorReason,
} from "../..";

const keys: Map<string, Uint8Array> = parseKeys(process.env.GATEWAY_CONTEXT_KEYS ?? "");
const key: Uint8Array = deriveKey("secret", "billing");

const app = express();
app.use(expressMiddleware({ keys: process.env.GATEWAY_CONTEXT_KEYS ?? "", audience: "billing" }));
app.use(expressMiddleware({ keys, audience: "billing", now: () => Date.now() / 1000 }));
app.get("/me", (req: Request, res: Response) => {
  const context: Context | undefined = req.gateway;
  const id: string | null = req.gateway?.userId ?? null;
  const admin: boolean = req.gateway?.roles.includes("admin") ?? false;
  res.json({ context, id, admin });
});

function fromRaw(rawHeaders: string[], method: string, path: string): Context | ContextErrorReason {
  try {
    return verify({ keys: { k1: key }, audience: "billing", method, path, headers: rawHeaders });
  } catch (error) {
    if (error instanceof ContextError) return error.reason;
    throw error;
  }
}
fromRaw([], "GET", "/");
verify({ keys, audience: "b", method: "GET", path: "/", headers: [["X-User-Id", "u"]], now: 1 });
verify({ keys, audience: "b", method: "GET", path: "/", headers: { "x-user-id": "u" } });

// What the declarations must refuse:
// @ts-expect-error userId may be null
const notNull: string = verify({ keys, audience: "b", method: "GET", path: "/", headers: [] }).userId;
// @ts-expect-error the context is read-only
verify({ keys, audience: "b", method: "GET", path: "/", headers: [] }).userId = "usr_admin";
// @ts-expect-error the audience is required
verify({ keys, method: "GET", path: "/", headers: [] });
// @ts-expect-error not a reason the package gives
const reason: ContextErrorReason = "expired";
export { notNull, reason };
