// Types of @gateway/context: verifies the gateway's signed context headers (v2).

/** Who the gateway says is calling: the verified X-Auth-Method, X-User-* ... headers. */
export interface Context {
  /** `jwt`, `cookie`, `api_key`, `pat`, `service`, or `none` (no credential on the route). */
  readonly authMethod: string;
  readonly requestId: string | null;
  readonly userId: string | null;
  readonly email: string | null;
  /** Whether the user proved they receive mail at `email`. */
  readonly emailVerified: boolean;
  readonly roles: readonly string[];
  readonly tenantId: string | null;
  readonly sessionId: string | null;
  readonly credentialId: string | null;
  /** X-Gateway-Timestamp, Unix seconds. */
  readonly timestamp: number;
}

/** Why a context was refused, one stable code per check. */
export type ContextErrorReason =
  | "duplicate_header"
  | "not_ascii"
  | "v1_signature"
  | "no_signature"
  | "wrong_audience"
  | "unknown_key"
  | "no_timestamp"
  | "stale"
  | "mismatch";

/** The context headers cannot be trusted; `reason` says why. */
export class ContextError extends Error {
  constructor(reason: ContextErrorReason, message: string);
  readonly name: "ContextError";
  readonly reason: ContextErrorReason;
}

/** kid -> the 32-byte key of this service's audience (what parseKeys returns). */
export type Keys = ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>;

/**
 * The request's headers: `req.rawHeaders` (flat, every line as received, the values one latin1
 * character a byte as Node's parser gives them, read here as UTF-8: a repeated signed header is
 * refused), [name, value] pairs of text, or `req.headers` (where Node has already joined a
 * repeated header with ", ", so that a repeat shows only as a signature mismatch).
 */
export type Headers =
  | readonly string[]
  | Iterable<readonly [string, string]>
  | { readonly [name: string]: string | readonly string[] | undefined };

export interface VerifyOptions {
  keys: Keys;
  /** This service's upstream name in the gateway's routes.yaml. */
  audience: string;
  method: string;
  /** The request target as received: path and query, undecoded (Express: req.originalUrl). */
  path: string;
  headers: Headers;
  /** Unix seconds; the clock by default. */
  now?: number;
}

export interface MiddlewareOptions {
  /** The `gateway context-key AUDIENCE` text (lines or comma-separated), or parseKeys' result. */
  keys: string | Keys;
  audience: string;
  /** Unix seconds; the clock by default. */
  now?: () => number;
}

/** The request as the middleware reads it (Express's or node:http's). */
export interface MiddlewareRequest {
  method?: string | undefined;
  url?: string | undefined;
  originalUrl?: string | undefined;
  rawHeaders: string[];
  gateway?: Context | undefined;
}

/** The response as the middleware writes a refusal to it. */
export interface MiddlewareResponse {
  statusCode: number;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  end(chunk: string): unknown;
}

export type Middleware = (
  req: MiddlewareRequest,
  res: MiddlewareResponse,
  next: (error?: unknown) => void,
) => void;

export const MAX_AGE: 60;
export const MAX_FUTURE: 5;
export const SIGNED: readonly string[];

/** The key that signs contexts for `audience`, from a GATEWAY_SERVICE_SECRET entry's secret. */
export function deriveKey(secret: string | Uint8Array, audience: string): Uint8Array;

/** kid -> key from `gateway context-key AUDIENCE` output; throws on anything else. */
export function parseKeys(text: string): Map<string, Uint8Array>;

/** The text the signature is the HMAC of. */
export function signedText(
  audience: string,
  method: string,
  path: string,
  timestamp: string,
  values: ReadonlyMap<string, string>,
): string;

/** The verified context of a request; throws ContextError when it cannot be trusted. */
export function verify(options: VerifyOptions): Context;

/** Sets `req.gateway`, or answers 401 application/problem+json. */
export function expressMiddleware(options: MiddlewareOptions): Middleware;

declare global {
  namespace Express {
    interface Request {
      /** The verified gateway context, set by expressMiddleware. */
      gateway?: Context;
    }
  }
}
