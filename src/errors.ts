import createError, { type FastifyError } from '@fastify/error'

/**
 * Every error the gateway raises on purpose is one of these coded errors. Each carries an HTTP status (used by the
 * REST endpoints and transport-level failures) and maps to one JSON-RPC code (used on the MCP endpoints), so a
 * failure reads the same whichever way a client reaches the gateway. Tests assert on `err.code`.
 */

/** JSON-RPC 2.0 and MCP error codes. */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Transport-level failures (the SDK uses it for bad headers, missing sessions, closed connections). */
  ServerError: -32000,
  /** The SDK's RequestTimeout, and its transport's "Session not found". */
  RequestTimeout: -32001,
  SessionNotFound: -32001,
  /** MCP "Resource not found" (2024-11-05 … 2025-11-25). */
  ResourceNotFound: -32002
} as const

export const ERR_CONFIG_INVALID = createError('MCPGW_ERR_CONFIG_INVALID', 'Invalid configuration%s', 500)
export const ERR_CONFIG_READ = createError('MCPGW_ERR_CONFIG_READ', 'Cannot read config file %s: %s', 500)

export const ERR_PARSE = createError('MCPGW_ERR_PARSE', 'Parse error: %s', 400)
export const ERR_INVALID_REQUEST = createError('MCPGW_ERR_INVALID_REQUEST', 'Invalid Request: %s', 400)
export const ERR_JSON_TOO_DEEP = createError('MCPGW_ERR_JSON_TOO_DEEP',
  'Invalid Request: the message nests arrays and objects deeper than %d levels (limits.maxJsonDepth)', 400)
export const ERR_BATCH_TOO_LARGE = createError('MCPGW_ERR_BATCH_TOO_LARGE',
  'Invalid Request: a batch of %d messages; at most %d are accepted in one (limits.maxBatch)', 400)
export const ERR_UNSUPPORTED_ENCODING = createError('MCPGW_ERR_UNSUPPORTED_ENCODING',
  'Unsupported Media Type: Content-Encoding %s is not accepted; send the body as it is, or gzip, deflate or br', 415)
export const ERR_METHOD_NOT_FOUND = createError('MCPGW_ERR_METHOD_NOT_FOUND', 'Method not found: %s', 404)
export const ERR_INVALID_PARAMS = createError('MCPGW_ERR_INVALID_PARAMS', 'Invalid params: %s', 400)
export const ERR_UNKNOWN_TOOL = createError('MCPGW_ERR_UNKNOWN_TOOL', 'Unknown tool: %s', 404)
export const ERR_UNKNOWN_PROMPT = createError('MCPGW_ERR_UNKNOWN_PROMPT', 'Unknown prompt: %s', 404)
export const ERR_UNKNOWN_RESOURCE = createError('MCPGW_ERR_UNKNOWN_RESOURCE', 'Resource not found: %s', 404)
export const ERR_INVALID_CURSOR = createError('MCPGW_ERR_INVALID_CURSOR', 'Invalid cursor: %s', 400)

export const ERR_SESSION_REQUIRED = createError('MCPGW_ERR_SESSION_REQUIRED',
  'Bad Request: Mcp-Session-Id header is required (send initialize first to open a session)', 400)
export const ERR_SESSION_NOT_FOUND = createError('MCPGW_ERR_SESSION_NOT_FOUND',
  'Session not found: %s (it ended or expired; send a new initialize without Mcp-Session-Id)', 404)
export const ERR_SESSION_LIMIT = createError('MCPGW_ERR_SESSION_LIMIT',
  'Too many sessions: the gateway holds its maximum of %d; end unused sessions with DELETE or raise sessions.max', 503)
export const ERR_ADDRESS_SESSION_LIMIT = createError('MCPGW_ERR_ADDRESS_SESSION_LIMIT',
  'Too many sessions from this address: it holds the maximum of %d busy sessions; end unused sessions with DELETE', 429)
export const ERR_PRINCIPAL_SESSION_LIMIT = createError('MCPGW_ERR_PRINCIPAL_SESSION_LIMIT',
  'Too many sessions for %s: it holds the maximum of %d busy sessions (sessions.maxPerPrincipal); end unused sessions with DELETE', 429)
export const ERR_SUBSCRIPTION_LIMIT = createError('MCPGW_ERR_SUBSCRIPTION_LIMIT',
  'Too many subscriptions: %s; unsubscribe from resources you no longer watch', 429)
export const ERR_TOO_MANY_IN_FLIGHT = createError('MCPGW_ERR_TOO_MANY_IN_FLIGHT',
  'Too many requests in flight: this session has its maximum of %d (limits.maxInFlight); wait for answers before sending more', 429)
/** The process is overloaded (event loop lag, memory): refused before any work, to be retried shortly. */
export class ERR_OVERLOADED extends Error {
  override readonly name = 'Overloaded'
  readonly code = 'MCPGW_ERR_OVERLOADED'
  readonly statusCode = 503
  readonly headers: Record<string, string>
  readonly data: { readonly retryAfterMs: number }

  constructor (what: string, retryAfterSec: number) {
    super(`Service Unavailable: the gateway is overloaded (${what}); retry in ${retryAfterSec} s`)
    this.headers = { 'retry-after': String(retryAfterSec) }
    this.data = { retryAfterMs: retryAfterSec * 1000 }
  }
}

/** What a rate limit refusal tells: which limit, and when to come back. */
export interface RateLimitFacts {
  /** The configured limit that refused: rateLimit.perIp, .perPrincipal or .perTool. */
  readonly limit: 'perIp' | 'perPrincipal' | 'perTool'
  readonly max: number
  readonly windowMs: number
  readonly burst: number
  readonly retryAfterMs: number
  readonly resetMs: number
}

/**
 * A request refused by a rate limit. On HTTP it is a 429 whose headers say when to retry (Retry-After, RateLimit-*);
 * in a JSON-RPC answer its data carries `retryAfterMs`.
 */
export class ERR_RATE_LIMITED extends Error {
  override readonly name = 'RateLimited'
  readonly code = 'MCPGW_ERR_RATE_LIMITED'
  readonly statusCode = 429
  readonly headers: Record<string, string>
  readonly data: { readonly limit: string, readonly retryAfterMs: number }

  constructor (who: string, facts: RateLimitFacts) {
    const retry = Math.max(1, Math.ceil(facts.retryAfterMs / 1000))
    super(`Too many requests: ${who} may send ${facts.max} per ${duration(facts.windowMs)} (rateLimit.${facts.limit}); retry in ${retry} s`)
    this.headers = {
      'retry-after': String(retry),
      // The bucket's size: what RateLimit-Remaining counts down from.
      'ratelimit-limit': String(facts.burst),
      'ratelimit-remaining': '0',
      'ratelimit-reset': String(Math.ceil(facts.resetMs / 1000))
    }
    this.data = { limit: facts.limit, retryAfterMs: facts.retryAfterMs }
  }
}

function duration (ms: number): string {
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000} minutes`
  if (ms % 1000 === 0) return ms === 1000 ? 'second' : `${ms / 1000} s`
  return `${ms} ms`
}

export const ERR_ALREADY_INITIALIZED = createError('MCPGW_ERR_ALREADY_INITIALIZED',
  'Invalid Request: initialize must be sent without an Mcp-Session-Id header; session %s is already initialized', 400)
export const ERR_UNSUPPORTED_PROTOCOL_VERSION = createError('MCPGW_ERR_UNSUPPORTED_PROTOCOL_VERSION',
  'Bad Request: Unsupported protocol version: %s (supported versions: %s)', 400)
export const ERR_NOT_ACCEPTABLE = createError('MCPGW_ERR_NOT_ACCEPTABLE', 'Not Acceptable: %s', 406)
export const ERR_UNSUPPORTED_MEDIA_TYPE = createError('MCPGW_ERR_UNSUPPORTED_MEDIA_TYPE',
  'Unsupported Media Type: %s is not accepted; send Content-Type: application/json', 415)
export const ERR_STREAM_CONFLICT = createError('MCPGW_ERR_STREAM_CONFLICT',
  'Conflict: session %s already has an open GET stream; only one is allowed per session', 409)
export const ERR_METHOD_NOT_ALLOWED = createError('MCPGW_ERR_METHOD_NOT_ALLOWED',
  'Method Not Allowed: %s (the MCP endpoint accepts GET, POST and DELETE)', 405)
export const ERR_ORIGIN_FORBIDDEN = createError('MCPGW_ERR_ORIGIN_FORBIDDEN',
  'Forbidden: Origin %s is not allowed (add it to allowedOrigins)', 403)
export const ERR_HOST_FORBIDDEN = createError('MCPGW_ERR_HOST_FORBIDDEN',
  'Forbidden: Host %s is not allowed (add it to allowedHosts)', 403)

export const ERR_UPSTREAM_RPC = createError('MCPGW_ERR_UPSTREAM_RPC', 'Upstream %s answered %s with an error: %s', 502)
export const ERR_NOT_INITIALIZED = createError('MCPGW_ERR_NOT_INITIALIZED',
  'Bad Request: the session is not initialized; send initialize first (got %s)', 400)
export const ERR_CAPABILITY_NOT_DECLARED = createError('MCPGW_ERR_CAPABILITY_NOT_DECLARED',
  'The client did not declare the %s capability, so the gateway cannot forward %s to it', 400)
export const ERR_NO_CLIENT = createError('MCPGW_ERR_NO_CLIENT',
  'No connected client can answer %s for upstream %s (it arrived outside any client call)', 503)
export const ERR_CLIENT_DID_NOT_ANSWER = createError('MCPGW_ERR_CLIENT_DID_NOT_ANSWER',
  'The client did not answer %s within %dms', 504)
export const ERR_CLIENT_SESSION_ENDED = createError('MCPGW_ERR_CLIENT_SESSION_ENDED',
  'The client session ended before it answered', 503)
export const ERR_UNKNOWN_EVENT_ID = createError('MCPGW_ERR_UNKNOWN_EVENT_ID',
  'Bad Request: Last-Event-ID %s is unknown or no longer kept; open a new stream without it', 400)
export const ERR_STREAM_COMPLETE = createError('MCPGW_ERR_STREAM_COMPLETE',
  'Method Not Allowed: the stream of Last-Event-ID %s was delivered in full; there is nothing to resume', 405)
export const ERR_UNKNOWN_TARGET = createError('MCPGW_ERR_UNKNOWN_TARGET',
  'Unknown target %s: address a registered server by its id (GET /status lists them)', 404)
export const ERR_REQUEST_CANCELLED = createError('MCPGW_ERR_REQUEST_CANCELLED', 'Request cancelled: %s', 499)
export const ERR_SHUTTING_DOWN = createError('MCPGW_ERR_SHUTTING_DOWN', 'The gateway is shutting down', 503)

/**
 * Every way a forwarded request can fail short of an answer from the upstream — it could not be sent, it was not
 * answered in time, the connection dropped, the upstream broke the protocol or answered with an HTTP error — is one
 * type. It says what the forwarder needs to decide: whether the request may have reached the upstream (`sent`: if
 * not, another replica can always take it) and whether the upstream itself may be gone (`suspect`: check its
 * health now). Its message is safe to show a client: upstream bodies are shortened and addresses are removed.
 */
export type UpstreamFailureCode =
  | 'MCPGW_ERR_UPSTREAM_UNAVAILABLE'
  | 'MCPGW_ERR_UPSTREAM_TIMEOUT'
  | 'MCPGW_ERR_UPSTREAM_HTTP'
  | 'MCPGW_ERR_UPSTREAM_PROTOCOL'
  | 'MCPGW_ERR_UPSTREAM_CLOSED'
  | 'MCPGW_ERR_UPSTREAM_SESSION_EXPIRED'
  | 'MCPGW_ERR_CIRCUIT_OPEN'
  | 'MCPGW_ERR_UPSTREAM_BUSY'

export interface FailureFacts {
  /** The request may have reached the upstream. */
  sent: boolean
  /** The upstream may be gone. */
  suspect: boolean
}

export class UpstreamFailure extends Error {
  override readonly name = 'UpstreamFailure'
  readonly sent: boolean
  readonly suspect: boolean

  constructor (readonly code: UpstreamFailureCode, readonly statusCode: number, message: string, facts: FailureFacts) {
    super(message)
    this.sent = facts.sent
    this.suspect = facts.suspect
  }
}

/** No replica can take the call, or the upstream cannot be reached: never sent. */
export class ERR_UPSTREAM_UNAVAILABLE extends UpstreamFailure {
  constructor (service: string, detail: string, facts: FailureFacts = { sent: false, suspect: false }) {
    super('MCPGW_ERR_UPSTREAM_UNAVAILABLE', 503, `Service ${service} is unavailable: ${redact(detail)}`, facts)
  }
}

/** Every usable replica of the service has its circuit open (it failed its calls): refused at once, never sent. */
export class ERR_CIRCUIT_OPEN extends UpstreamFailure {
  readonly headers: Record<string, string>
  readonly data: { readonly retryAfterMs: number }

  constructor (service: string, retryAfterMs: number) {
    const retry = Math.max(1, Math.ceil(retryAfterMs / 1000))
    super('MCPGW_ERR_CIRCUIT_OPEN', 503,
      `Service ${service} is unavailable: its calls failed repeatedly, so the circuit breaker stops them for now; retry in ${retry} s`,
      { sent: false, suspect: false })
    this.headers = { 'retry-after': String(retry) }
    this.data = { retryAfterMs }
  }
}

/** The upstream has its most calls in flight and its queue is full (or a call waited too long): never sent. */
export class ERR_UPSTREAM_BUSY extends UpstreamFailure {
  readonly headers: Record<string, string> = { 'retry-after': '1' }
  readonly data = { retryAfterMs: 1000 }

  constructor (upstream: string, detail: string) {
    super('MCPGW_ERR_UPSTREAM_BUSY', 503, `Upstream ${upstream} is busy: ${detail}; retry shortly`, { sent: false, suspect: false })
  }
}

/** The deadline passed: the upstream had the request and did not answer. */
export class ERR_UPSTREAM_TIMEOUT extends UpstreamFailure {
  constructor (upstream: string, what: string, ms: number) {
    super('MCPGW_ERR_UPSTREAM_TIMEOUT', 504, `Upstream ${upstream} did not answer ${what} within ${ms}ms`, { sent: true, suspect: true })
  }
}

/** The upstream answered with an HTTP error status; `upstreamStatus` is that status (the error's own is 502). */
export class ERR_UPSTREAM_HTTP extends UpstreamFailure {
  constructor (upstream: string, readonly upstreamStatus: number, detail: string) {
    // 502, 503 and 504 are what a proxy in front of the upstream answers when the upstream is not there.
    super('MCPGW_ERR_UPSTREAM_HTTP', 502, `Upstream ${upstream} answered HTTP ${upstreamStatus}: ${shorten(redact(detail))}`,
      { sent: true, suspect: upstreamStatus >= 502 && upstreamStatus <= 504 })
  }
}

export class ERR_UPSTREAM_PROTOCOL extends UpstreamFailure {
  constructor (upstream: string, detail: string) {
    super('MCPGW_ERR_UPSTREAM_PROTOCOL', 502, `Upstream ${upstream} broke the protocol: ${shorten(redact(detail))}`, { sent: true, suspect: false })
  }
}

/** The connection or session ended; `sent: false` when it had ended before the request went out. */
export class ERR_UPSTREAM_CLOSED extends UpstreamFailure {
  constructor (upstream: string, reason: string, facts: FailureFacts = { sent: true, suspect: true }) {
    super('MCPGW_ERR_UPSTREAM_CLOSED', 502, `Connection to upstream ${upstream} closed: ${redact(reason)}`, facts)
  }
}

/** The upstream no longer knows the session the request carried (it restarted); the request was not processed. */
export class ERR_UPSTREAM_SESSION_EXPIRED extends UpstreamFailure {
  constructor (upstream: string, session: string) {
    super('MCPGW_ERR_UPSTREAM_SESSION_EXPIRED', 502, `Upstream ${upstream} no longer knows session ${session}`, { sent: false, suspect: false })
  }
}

/** Longest upstream text a client sees; the rest is in the gateway's log. */
const DETAIL_LIMIT = 200

function shorten (text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length <= DETAIL_LIMIT ? flat : flat.slice(0, DETAIL_LIMIT) + '…'
}

/**
 * Removes what tells a client where upstreams live or how they authenticate: credentials (`token=…`, `Bearer …`,
 * `password: …`), URLs, IP addresses, host:port pairs. Upstream ids stay (they are public: they prefix the tool names).
 */
export function redact (text: string): string {
  return text
    .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 <redacted>')
    .replace(/\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|authorization|cookie|session)(["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi, '$1$2<redacted>')
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>,;)]+/gi, '<url>')
    .replace(/\[[0-9a-f:.]*:[0-9a-f:.]*\](?::\d+)?/gi, '<address>')
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '<address>')
    .replace(/\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b/gi, '<address>')
    .replace(/\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{2,5}\b/gi, '<address>')
}

export const ERR_SERVER_EXISTS = createError('MCPGW_ERR_SERVER_EXISTS',
  'Server %s is already registered (use PUT /admin/servers/%s to change it)', 409)
export const ERR_SERVER_NOT_FOUND = createError('MCPGW_ERR_SERVER_NOT_FOUND', 'Server %s is not registered', 404)
export const ERR_SERVER_INVALID = createError('MCPGW_ERR_SERVER_INVALID', 'Invalid server definition: %s', 400)
export const ERR_UNAUTHENTICATED = createError('MCPGW_ERR_UNAUTHENTICATED', 'Unauthorized: %s', 401)
export const ERR_INSUFFICIENT_SCOPE = createError('MCPGW_ERR_INSUFFICIENT_SCOPE', 'Forbidden: %s', 403)
export const ERR_CREDENTIALS_INVALID = createError('MCPGW_ERR_CREDENTIALS_INVALID', 'Bad Request: %s', 400)
export const ERR_AUTH_UNAVAILABLE = createError('MCPGW_ERR_AUTH_UNAVAILABLE', 'Service Unavailable: %s; try again shortly', 503)
export const ERR_ADMIN_FORBIDDEN = createError('MCPGW_ERR_ADMIN_FORBIDDEN',
  'Forbidden: %s has no role with admin: true (auth.roles)', 403)
export const ERR_ADMIN_UNAUTHORIZED = createError('MCPGW_ERR_ADMIN_UNAUTHORIZED',
  'Unauthorized: send the admin API key as "Authorization: Bearer <key>" or "x-api-key: <key>"', 401)

const rpcCodes: Record<string, number> = {
  MCPGW_ERR_PARSE: RpcCode.ParseError,
  MCPGW_ERR_INVALID_REQUEST: RpcCode.InvalidRequest,
  MCPGW_ERR_JSON_TOO_DEEP: RpcCode.InvalidRequest,
  MCPGW_ERR_BATCH_TOO_LARGE: RpcCode.InvalidRequest,
  MCPGW_ERR_ALREADY_INITIALIZED: RpcCode.InvalidRequest,
  MCPGW_ERR_METHOD_NOT_FOUND: RpcCode.MethodNotFound,
  MCPGW_ERR_INVALID_PARAMS: RpcCode.InvalidParams,
  MCPGW_ERR_UNKNOWN_TOOL: RpcCode.InvalidParams,
  MCPGW_ERR_UNKNOWN_PROMPT: RpcCode.InvalidParams,
  MCPGW_ERR_INVALID_CURSOR: RpcCode.InvalidParams,
  MCPGW_ERR_UNKNOWN_RESOURCE: RpcCode.ResourceNotFound,
  MCPGW_ERR_SESSION_NOT_FOUND: RpcCode.SessionNotFound,
  MCPGW_ERR_SESSION_LIMIT: RpcCode.ServerError,
  MCPGW_ERR_ADDRESS_SESSION_LIMIT: RpcCode.ServerError,
  MCPGW_ERR_PRINCIPAL_SESSION_LIMIT: RpcCode.ServerError,
  MCPGW_ERR_SUBSCRIPTION_LIMIT: RpcCode.ServerError,
  MCPGW_ERR_TOO_MANY_IN_FLIGHT: RpcCode.ServerError,
  MCPGW_ERR_UPSTREAM_TIMEOUT: RpcCode.RequestTimeout,
  MCPGW_ERR_UPSTREAM_UNAVAILABLE: RpcCode.InternalError,
  MCPGW_ERR_UPSTREAM_HTTP: RpcCode.InternalError,
  MCPGW_ERR_UPSTREAM_PROTOCOL: RpcCode.InternalError,
  MCPGW_ERR_UPSTREAM_CLOSED: RpcCode.ServerError,
  MCPGW_ERR_NOT_INITIALIZED: RpcCode.ServerError,
  MCPGW_ERR_CAPABILITY_NOT_DECLARED: RpcCode.MethodNotFound,
  MCPGW_ERR_NO_CLIENT: RpcCode.InternalError,
  MCPGW_ERR_CLIENT_DID_NOT_ANSWER: RpcCode.RequestTimeout,
  MCPGW_ERR_CLIENT_SESSION_ENDED: RpcCode.InternalError,
  MCPGW_ERR_UNKNOWN_EVENT_ID: RpcCode.ServerError,
  MCPGW_ERR_STREAM_COMPLETE: RpcCode.ServerError,
  MCPGW_ERR_UNKNOWN_TARGET: RpcCode.InvalidParams,
  MCPGW_ERR_UPSTREAM_SESSION_EXPIRED: RpcCode.ServerError,
  MCPGW_ERR_CIRCUIT_OPEN: RpcCode.ServerError,
  MCPGW_ERR_UPSTREAM_BUSY: RpcCode.ServerError
}

export interface RpcErrorObject {
  code: number
  message: string
  data?: unknown
}

/**
 * An upstream's own JSON-RPC error, kept verbatim so the client sees what the server said. Its HTTP status (for the
 * REST endpoints) is 4xx when the upstream blamed the request, 502 otherwise.
 */
export function upstreamRpcError (serverId: string, method: string, error: RpcErrorObject): FastifyError & { rpcError: RpcErrorObject } {
  const err = new ERR_UPSTREAM_RPC(serverId, method, error.message) as FastifyError & { rpcError: RpcErrorObject }
  err.rpcError = error
  const code = error.code
  if (code === RpcCode.InvalidParams || code === RpcCode.InvalidRequest || code === RpcCode.ParseError) err.statusCode = 400
  else if (code === RpcCode.MethodNotFound || code === RpcCode.ResourceNotFound) err.statusCode = 404
  return err
}

/** The refusals that say when to come back: their `headers` go on an HTTP answer, their `data` into a JSON-RPC error. */
export function isRetryHint (err: unknown): err is ERR_RATE_LIMITED | ERR_CIRCUIT_OPEN | ERR_UPSTREAM_BUSY | ERR_OVERLOADED {
  return err instanceof ERR_RATE_LIMITED || err instanceof ERR_CIRCUIT_OPEN || err instanceof ERR_UPSTREAM_BUSY || err instanceof ERR_OVERLOADED
}

/** The JSON-RPC error object for anything thrown while serving a request. */
export function toRpcError (err: unknown): RpcErrorObject {
  if (err === null || typeof err !== 'object') return { code: RpcCode.InternalError, message: 'Internal error: ' + String(err) }
  const e = err as Partial<FastifyError> & { rpcError?: RpcErrorObject }
  if (e.rpcError !== undefined) return e.rpcError
  // What a coded error adds for programs (when to retry) travels in data, beside the code.
  const extra = isRetryHint(err) ? err.data : undefined
  const code = e.code !== undefined ? rpcCodes[e.code] : undefined
  if (code !== undefined) return { code, message: String(e.message), data: { code: e.code, ...extra } }
  if (typeof e.code === 'string' && e.code.startsWith('MCPGW_ERR_')) {
    return { code: RpcCode.ServerError, message: String(e.message), data: { code: e.code, ...extra } }
  }
  return { code: RpcCode.InternalError, message: 'Internal error: ' + String(e.message ?? err) }
}

export type { FastifyError }
