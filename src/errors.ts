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

export const ERR_UPSTREAM_UNAVAILABLE = createError('MCPGW_ERR_UPSTREAM_UNAVAILABLE',
  'Service %s is unavailable: %s', 503)
export const ERR_UPSTREAM_TIMEOUT = createError('MCPGW_ERR_UPSTREAM_TIMEOUT',
  'Upstream %s did not answer %s within %dms', 504)
export const ERR_UPSTREAM_HTTP = createError('MCPGW_ERR_UPSTREAM_HTTP', 'Upstream %s answered HTTP %d: %s', 502)
export const ERR_UPSTREAM_PROTOCOL = createError('MCPGW_ERR_UPSTREAM_PROTOCOL', 'Upstream %s broke the protocol: %s', 502)
export const ERR_UPSTREAM_CLOSED = createError('MCPGW_ERR_UPSTREAM_CLOSED', 'Connection to upstream %s closed: %s', 502)
export const ERR_UPSTREAM_SESSION_EXPIRED = createError('MCPGW_ERR_UPSTREAM_SESSION_EXPIRED',
  'Upstream %s no longer knows session %s', 502)
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
export const ERR_UNKNOWN_TARGET = createError('MCPGW_ERR_UNKNOWN_TARGET',
  'Unknown target %s: address a registered server by its id (GET /status lists them)', 404)
export const ERR_REQUEST_CANCELLED = createError('MCPGW_ERR_REQUEST_CANCELLED', 'Request cancelled: %s', 499)
export const ERR_SHUTTING_DOWN = createError('MCPGW_ERR_SHUTTING_DOWN', 'The gateway is shutting down', 503)

export const ERR_SERVER_EXISTS = createError('MCPGW_ERR_SERVER_EXISTS',
  'Server %s is already registered (use PUT /admin/servers/%s to change it)', 409)
export const ERR_SERVER_NOT_FOUND = createError('MCPGW_ERR_SERVER_NOT_FOUND', 'Server %s is not registered', 404)
export const ERR_SERVER_INVALID = createError('MCPGW_ERR_SERVER_INVALID', 'Invalid server definition: %s', 400)
export const ERR_ADMIN_UNAUTHORIZED = createError('MCPGW_ERR_ADMIN_UNAUTHORIZED',
  'Unauthorized: send the admin API key as "Authorization: Bearer <key>" or "x-api-key: <key>"', 401)

const rpcCodes: Record<string, number> = {
  MCPGW_ERR_PARSE: RpcCode.ParseError,
  MCPGW_ERR_INVALID_REQUEST: RpcCode.InvalidRequest,
  MCPGW_ERR_ALREADY_INITIALIZED: RpcCode.InvalidRequest,
  MCPGW_ERR_METHOD_NOT_FOUND: RpcCode.MethodNotFound,
  MCPGW_ERR_INVALID_PARAMS: RpcCode.InvalidParams,
  MCPGW_ERR_UNKNOWN_TOOL: RpcCode.InvalidParams,
  MCPGW_ERR_UNKNOWN_PROMPT: RpcCode.InvalidParams,
  MCPGW_ERR_INVALID_CURSOR: RpcCode.InvalidParams,
  MCPGW_ERR_UNKNOWN_RESOURCE: RpcCode.ResourceNotFound,
  MCPGW_ERR_SESSION_NOT_FOUND: RpcCode.SessionNotFound,
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
  MCPGW_ERR_UNKNOWN_TARGET: RpcCode.InvalidParams,
  MCPGW_ERR_UPSTREAM_SESSION_EXPIRED: RpcCode.ServerError
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

/** The JSON-RPC error object for anything thrown while serving a request. */
export function toRpcError (err: unknown): RpcErrorObject {
  if (err === null || typeof err !== 'object') return { code: RpcCode.InternalError, message: 'Internal error: ' + String(err) }
  const e = err as Partial<FastifyError> & { rpcError?: RpcErrorObject }
  if (e.rpcError !== undefined) return e.rpcError
  const code = e.code !== undefined ? rpcCodes[e.code] : undefined
  if (code !== undefined) return { code, message: String(e.message), data: { code: e.code } }
  if (typeof e.code === 'string' && e.code.startsWith('MCPGW_ERR_')) {
    return { code: RpcCode.ServerError, message: String(e.message), data: { code: e.code } }
  }
  return { code: RpcCode.InternalError, message: 'Internal error: ' + String(e.message ?? err) }
}

export type { FastifyError }
