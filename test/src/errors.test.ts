import { test } from 'tap'
import {
  ERR_ADMIN_UNAUTHORIZED,
  ERR_ALREADY_INITIALIZED,
  ERR_CIRCUIT_OPEN,
  ERR_CONFIG_INVALID,
  ERR_INVALID_CURSOR,
  ERR_INVALID_PARAMS,
  ERR_INVALID_REQUEST,
  ERR_METHOD_NOT_FOUND,
  ERR_PARSE,
  ERR_RATE_LIMITED,
  ERR_SESSION_NOT_FOUND,
  ERR_SHUTTING_DOWN,
  ERR_UNKNOWN_PROMPT,
  ERR_UNKNOWN_RESOURCE,
  ERR_UNKNOWN_TOOL,
  ERR_UPSTREAM_BUSY,
  ERR_UPSTREAM_CLOSED,
  ERR_UPSTREAM_HTTP,
  ERR_UPSTREAM_PROTOCOL,
  ERR_UPSTREAM_SESSION_EXPIRED,
  ERR_UPSTREAM_TIMEOUT,
  ERR_UPSTREAM_UNAVAILABLE,
  redact,
  RpcCode,
  toRpcError,
  UpstreamFailure,
  upstreamRpcError
} from '../../src/errors.js'
import { upstreamFailure } from '../../src/upstream/failure.js'

test('the JSON-RPC and MCP codes are the ones the specs define', async (t) => {
  t.same(RpcCode, {
    ParseError: -32700,
    InvalidRequest: -32600,
    MethodNotFound: -32601,
    InvalidParams: -32602,
    InternalError: -32603,
    ServerError: -32000,
    RequestTimeout: -32001,
    SessionNotFound: -32001,
    ResourceNotFound: -32002
  })
})

test('coded errors carry their code, HTTP status and a message that names the problem', async (t) => {
  const err = new ERR_UNKNOWN_TOOL('github__nope')
  t.equal(err.code, 'MCPGW_ERR_UNKNOWN_TOOL')
  t.equal(err.statusCode, 404)
  t.equal(err.message, 'Unknown tool: github__nope')
  t.ok(err instanceof Error)

  const timeout = new ERR_UPSTREAM_TIMEOUT('fs-1', 'tools/call', 5000)
  t.equal(timeout.message, 'Upstream fs-1 did not answer tools/call within 5000ms')
  t.equal(timeout.statusCode, 504)
  t.equal(new ERR_UPSTREAM_UNAVAILABLE('fs', 'no replica is up').statusCode, 503)
  t.equal(new ERR_ADMIN_UNAUTHORIZED().statusCode, 401)
})

test('toRpcError maps coded errors to their JSON-RPC codes and keeps the gateway code in data', async (t) => {
  const cases: Array<[Error & { code: string }, number]> = [
    [new ERR_PARSE('bad json'), RpcCode.ParseError],
    [new ERR_INVALID_REQUEST('no method'), RpcCode.InvalidRequest],
    [new ERR_ALREADY_INITIALIZED('s1'), RpcCode.InvalidRequest],
    [new ERR_METHOD_NOT_FOUND('foo/bar'), RpcCode.MethodNotFound],
    [new ERR_INVALID_PARAMS('name is required'), RpcCode.InvalidParams],
    [new ERR_UNKNOWN_TOOL('x'), RpcCode.InvalidParams],
    [new ERR_UNKNOWN_PROMPT('x'), RpcCode.InvalidParams],
    [new ERR_INVALID_CURSOR('"x" is bad'), RpcCode.InvalidParams],
    [new ERR_UNKNOWN_RESOURCE('file:///x'), RpcCode.ResourceNotFound],
    [new ERR_SESSION_NOT_FOUND('s1'), RpcCode.SessionNotFound],
    [new ERR_UPSTREAM_TIMEOUT('a', 'tools/call', 10), RpcCode.RequestTimeout],
    [new ERR_UPSTREAM_UNAVAILABLE('a', 'down'), RpcCode.InternalError],
    [new ERR_UPSTREAM_HTTP('a', 500, 'boom'), RpcCode.InternalError],
    [new ERR_UPSTREAM_PROTOCOL('a', 'bad frame'), RpcCode.InternalError],
    [new ERR_UPSTREAM_CLOSED('a', 'exited'), RpcCode.ServerError],
    [new ERR_UPSTREAM_SESSION_EXPIRED('a', 's1'), RpcCode.ServerError]
  ]
  for (const [err, code] of cases) {
    t.same(toRpcError(err), { code, message: err.message, data: { code: err.code } }, err.code)
  }
  t.same(toRpcError(new ERR_UNKNOWN_TOOL('github__nope')), {
    code: -32602,
    message: 'Unknown tool: github__nope',
    data: { code: 'MCPGW_ERR_UNKNOWN_TOOL' }
  })
})

test('other gateway errors become -32000 with their code in data', async (t) => {
  for (const err of [new ERR_SHUTTING_DOWN(), new ERR_CONFIG_INVALID(': x')]) {
    t.same(toRpcError(err), { code: RpcCode.ServerError, message: err.message, data: { code: err.code } }, err.code)
  }
})

test('an upstream JSON-RPC error is passed through verbatim', async (t) => {
  const rpcError = { code: -32099, message: 'quota exceeded', data: { retryAfter: 30 } }
  const err = upstreamRpcError('github-1', 'tools/call', rpcError)
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_RPC')
  t.equal(err.message, 'Upstream github-1 answered tools/call with an error: quota exceeded')
  t.equal(err.rpcError, rpcError)
  t.equal(toRpcError(err), rpcError, 'the very object the upstream sent')
})

test('upstreamRpcError maps the upstream code to an HTTP status', async (t) => {
  const status = (code: number) => upstreamRpcError('s', 'm', { code, message: 'x' }).statusCode
  t.equal(status(RpcCode.InvalidParams), 400)
  t.equal(status(RpcCode.InvalidRequest), 400)
  t.equal(status(RpcCode.ParseError), 400)
  t.equal(status(RpcCode.MethodNotFound), 404)
  t.equal(status(RpcCode.ResourceNotFound), 404)
  t.equal(status(RpcCode.InternalError), 502)
  t.equal(status(RpcCode.ServerError), 502)
  t.equal(status(-32001), 502)
  t.equal(status(1), 502)
})

test('anything else is an internal error (-32603) with its message and no data', async (t) => {
  t.same(toRpcError(new Error('kaboom')), { code: RpcCode.InternalError, message: 'Internal error: kaboom' })
  t.same(toRpcError(new TypeError('x is undefined')), { code: -32603, message: 'Internal error: x is undefined' })
  t.same(toRpcError(Object.assign(new Error('nope'), { code: 'ENOENT' })), { code: -32603, message: 'Internal error: nope' },
    'a foreign error code is not exposed as data')
  t.same(toRpcError('plain string'), { code: -32603, message: 'Internal error: plain string' })
  t.same(toRpcError(42), { code: -32603, message: 'Internal error: 42' })
})

test('toRpcError never throws, even for null or undefined', async (t) => {
  t.doesNotThrow(() => toRpcError(null), 'throw null')
  t.doesNotThrow(() => toRpcError(undefined), 'throw undefined')
})

test('every upstream failure is one type that says whether the request was sent and whether the upstream may be gone', async (t) => {
  const cases: Array<[unknown, string, boolean, boolean]> = [
    [Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:8080'), { code: 'ECONNREFUSED' }), 'MCPGW_ERR_UPSTREAM_UNAVAILABLE', false, true],
    [Object.assign(new Error('getaddrinfo ENOTFOUND mcp.internal'), { code: 'ENOTFOUND' }), 'MCPGW_ERR_UPSTREAM_UNAVAILABLE', false, true],
    [Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), 'MCPGW_ERR_UPSTREAM_UNAVAILABLE', false, true],
    [Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }), 'MCPGW_ERR_UPSTREAM_UNAVAILABLE', false, false],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'MCPGW_ERR_UPSTREAM_CLOSED', true, true],
    [Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), 'MCPGW_ERR_UPSTREAM_CLOSED', true, true],
    [Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }), 'MCPGW_ERR_UPSTREAM_UNAVAILABLE', false, true],
    [new Error('something odd'), 'MCPGW_ERR_UPSTREAM_CLOSED', true, true],
    [new ERR_UPSTREAM_TIMEOUT('u', 'tools/call', 5), 'MCPGW_ERR_UPSTREAM_TIMEOUT', true, true],
    [new ERR_UPSTREAM_HTTP('u', 500, 'boom'), 'MCPGW_ERR_UPSTREAM_HTTP', true, false],
    [new ERR_UPSTREAM_HTTP('u', 503, 'no backend'), 'MCPGW_ERR_UPSTREAM_HTTP', true, true],
    [new ERR_UPSTREAM_PROTOCOL('u', 'not JSON'), 'MCPGW_ERR_UPSTREAM_PROTOCOL', true, false],
    [new ERR_UPSTREAM_SESSION_EXPIRED('u', 's1'), 'MCPGW_ERR_UPSTREAM_SESSION_EXPIRED', false, false]
  ]
  for (const [err, code, sent, suspect] of cases) {
    const failure = upstreamFailure(err, 'u')
    t.ok(failure instanceof UpstreamFailure, code)
    t.match(failure, { code, sent, suspect }, `${(err as Error).message} → ${code}`)
    t.notMatch(failure.message, /10\.1\.2\.3|mcp\.internal/, 'no address reaches the message')
  }
  const rpc = upstreamRpcError('u', 'tools/call', { code: -32602, message: 'bad' })
  t.equal(upstreamFailure(rpc, 'u'), rpc, 'an answer from the upstream is not a failure')
  t.equal((upstreamFailure(new ERR_SHUTTING_DOWN(), 'u') as Error & { code: string }).code, 'MCPGW_ERR_SHUTTING_DOWN', 'other gateway errors pass as they are')
})

test('upstream HTTP error bodies are shortened and lose their addresses', async (t) => {
  const body = 'proxy error: backend http://10.0.0.7:9000/mcp (10.0.0.7:9000) refused; see [fd00::1]:443 and db.internal.example:5432 ' + 'x'.repeat(500)
  const err = new ERR_UPSTREAM_HTTP('github', 502, body)
  t.match(err.message, /^Upstream github answered HTTP 502: proxy error: backend <url> \(<address>\) refused; see <address> and <address> x+…$/)
  t.ok(err.message.length < 300, 'shortened')
  t.equal(err.upstreamStatus, 502)
  t.equal(redact('github__search and tool names stay'), 'github__search and tool names stay')
  t.equal(redact('localhost:3000 and 127.0.0.1 and ::1-free text'), '<address> and <address> and ::1-free text')
})

test('regression: credentials in upstream error text are hidden', async (t) => {
  t.equal(redact('401: header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig was refused'), '401: header Authorization: <redacted> <redacted> was refused')
  t.equal(redact('basic dXNlcjpwYXNzd29yZA== rejected'), 'basic <redacted> rejected')
  t.equal(redact('connect failed: password=hunter22&user=x, api_key: "sk-live-123"'), 'connect failed: password=<redacted>&user=x, api_key: "<redacted>"')
  t.equal(redact('{"token":"abc123","ok":false}'), '{"token":"<redacted>","ok":false}')
  t.equal(redact('the tool token count was 12'), 'the tool token count was 12', 'words that merely name a secret stay')
})

test('refusals that say when to retry carry it in JSON-RPC data and in Retry-After', async (t) => {
  const circuit = new ERR_CIRCUIT_OPEN('svc', 2500)
  t.match(toRpcError(circuit), { code: -32000, data: { code: 'MCPGW_ERR_CIRCUIT_OPEN', retryAfterMs: 2500 } })
  t.same(circuit.headers, { 'retry-after': '3' })
  t.match(toRpcError(new ERR_UPSTREAM_BUSY('u', 'full')), { code: -32000, data: { code: 'MCPGW_ERR_UPSTREAM_BUSY', retryAfterMs: 1000 } })
  const limited = new ERR_RATE_LIMITED('"alice"', { limit: 'perPrincipal', max: 10, windowMs: 60_000, burst: 10, retryAfterMs: 5500, resetMs: 60_000 })
  t.match(toRpcError(limited), { code: -32000, message: /"alice" may send 10 per minute \(rateLimit\.perPrincipal\); retry in 6 s/, data: { code: 'MCPGW_ERR_RATE_LIMITED', limit: 'perPrincipal', retryAfterMs: 5500 } })
  t.same(limited.headers, { 'retry-after': '6', 'ratelimit-limit': '10', 'ratelimit-remaining': '0', 'ratelimit-reset': '60' })
})
