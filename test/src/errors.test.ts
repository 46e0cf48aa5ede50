import { test } from 'tap'
import {
  ERR_ADMIN_UNAUTHORIZED,
  ERR_ALREADY_INITIALIZED,
  ERR_CONFIG_INVALID,
  ERR_INVALID_CURSOR,
  ERR_INVALID_PARAMS,
  ERR_INVALID_REQUEST,
  ERR_METHOD_NOT_FOUND,
  ERR_PARSE,
  ERR_SESSION_NOT_FOUND,
  ERR_SHUTTING_DOWN,
  ERR_UNKNOWN_PROMPT,
  ERR_UNKNOWN_RESOURCE,
  ERR_UNKNOWN_TOOL,
  ERR_UPSTREAM_CLOSED,
  ERR_UPSTREAM_HTTP,
  ERR_UPSTREAM_PROTOCOL,
  ERR_UPSTREAM_SESSION_EXPIRED,
  ERR_UPSTREAM_TIMEOUT,
  ERR_UPSTREAM_UNAVAILABLE,
  RpcCode,
  toRpcError,
  upstreamRpcError
} from '../../src/errors.js'

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
