import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { type Test, test } from 'tap'
import { Cancellation } from '../../../src/cancellation.js'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../../src/config/normalize.js'
import { HttpSession } from '../../../src/upstream/http.js'
import { HttpUpstream } from '../../../src/upstream/http-upstream.js'
import type { JsonRpcNotification } from '../../../schemas/jsonrpc.js'
import { waitFor } from '../../helper.js'

/**
 * The upstream side of these tests is hand-written fixtures: plain `node:http` servers on 127.0.0.1:0, so every
 * status, header and byte the session reads is chosen here, including the ones a real server would never send.
 */

/** A JSON-RPC message as the fixture received it: read loosely, since the tests check its shape themselves. */
type Message = Record<string, any>

interface Seen {
  method: string
  headers: IncomingHttpHeaders
  body: Message | undefined
}

type Route = (req: Seen, res: ServerResponse) => void

interface Fixture {
  url: string
  seen: Seen[]
  /** The first request, already received or still to come, that matches. */
  next (what: string, match: (req: Seen) => boolean): Promise<Seen>
}

const IDENTITY = { capabilities: {}, clientInfo: { name: 'http-test', version: '1.0.0' } }
const TIMEOUT = 10_000
const NEGOTIATED = '2025-06-18'

async function startFixture (t: Test, route: Route): Promise<Fixture> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { text += chunk })
    req.on('end', () => {
      const entry = { method: req.method as string, headers: req.headers, body: text === '' ? undefined : JSON.parse(text) as Message }
      seen.push(entry)
      route(entry, res)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise(resolve => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    next: (what, match) => waitFor(what, () => seen.find(match))
  }
}

function json (res: ServerResponse, message: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(message))
}

function sseEvent (message: unknown): string {
  return 'event: message\ndata: ' + JSON.stringify(message) + '\n\n'
}

function openSse (res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
}

function result (id: unknown, value: unknown): Message {
  return { jsonrpc: '2.0', id, result: value }
}

interface McpOptions {
  /** The session id each initialize gets. */
  sessionId?: () => string
  /** Answers GET (the standalone stream); 405 when absent. */
  get?: Route
}

/**
 * A minimal Streamable HTTP server: initialize (JSON, with a session id), 202 for notifications and responses,
 * 200 for DELETE, 405 for GET unless `get` is given; every other request goes to `onRequest`.
 */
function mcp (onRequest: (msg: Message, res: ServerResponse, req: Seen) => void, options: McpOptions = {}): Route {
  return (req, res) => {
    if (req.method === 'DELETE') {
      res.writeHead(200).end()
      return
    }
    if (req.method === 'GET') {
      if (options.get !== undefined) options.get(req, res)
      else res.writeHead(405, { allow: 'POST, DELETE' }).end()
      return
    }
    const msg = req.body as Message
    if (msg.method === 'initialize') {
      json(res, result(msg.id, {
        protocolVersion: NEGOTIATED,
        capabilities: { tools: { listChanged: true } },
        serverInfo: { name: 'http-fixture', version: '1.0.0' }
      }), { 'mcp-session-id': options.sessionId?.() ?? 'sess-1' })
      return
    }
    if (msg.id === undefined || msg.method === undefined) {
      res.writeHead(202).end()
      return
    }
    onRequest(msg, res, req)
  }
}

const isCall = (req: Seen) => req.body?.method === 'tools/call'
const isCancel = (req: Seen) => req.body?.method === 'notifications/cancelled'

/** An upstream and one initialized session on it, both closed when the test ends. */
async function connect (t: Test, route: Route, options: { streamRetry?: number, initialize?: boolean } = {}) {
  const fixture = await startFixture(t, route)
  const definition = normalizeServer({ id: 'http-up', url: fixture.url, timeout: TIMEOUT }, DEFAULT_UPSTREAM)
  const upstream = new HttpUpstream(definition, { connectTimeout: 5000, streamRetry: options.streamRetry ?? 20, streamRetryMax: 200 })
  const session = new HttpSession(upstream)
  t.teardown(async () => {
    await session.close()
    await upstream.close()
  })
  if (options.initialize !== false) await session.initialize(IDENTITY, TIMEOUT)
  return { fixture, upstream, session }
}

function failure (promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  return promise.then(
    (value) => { throw new Error(`expected a rejection, got ${JSON.stringify(value)}`) },
    (err: Error & Record<string, unknown>) => err
  )
}

test('initialize keeps mcp-session-id and sends it with mcp-protocol-version on later requests', async (t) => {
  const { fixture, session } = await connect(t, mcp((msg, res) => json(res, result(msg.id, { tools: [] }))))
  t.equal(session.sessionId, 'sess-1')
  t.equal(session.protocolVersion, NEGOTIATED)
  t.same(await session.request('tools/list', undefined, { timeout: TIMEOUT }), { tools: [] })

  const [init, initialized, list] = fixture.seen
  t.match(init, { method: 'POST', body: { method: 'initialize', params: { protocolVersion: '2025-11-25', clientInfo: { name: 'http-test' } } } })
  t.notOk(init?.headers['mcp-session-id'], 'initialize goes without a session id')
  t.match(init?.headers, { 'content-type': 'application/json', accept: 'application/json, text/event-stream' })
  t.match(initialized, { body: { method: 'notifications/initialized' }, headers: { 'mcp-session-id': 'sess-1' } })
  t.equal(initialized?.headers['mcp-protocol-version'], NEGOTIATED, 'notifications/initialized carries the negotiated version')
  t.match(list, { body: { method: 'tools/list' }, headers: { 'mcp-session-id': 'sess-1', 'mcp-protocol-version': NEGOTIATED } })
})

test('a JSON answer resolves with its result', async (t) => {
  const { fixture, session } = await connect(t, mcp((msg, res) => json(res, result(msg.id, {
    content: [{ type: 'text', text: `called ${msg.params.name}` }], isError: false
  }))))
  const answer = await session.request('tools/call', { name: 'echo', arguments: { a: 1 } }, { timeout: TIMEOUT })
  t.same(answer, { content: [{ type: 'text', text: 'called echo' }], isError: false })
  t.match(fixture.seen.find(isCall)?.body, { jsonrpc: '2.0', id: Number, params: { name: 'echo', arguments: { a: 1 } } })
})

test('an SSE answer delivers progress before the result', async (t) => {
  const { fixture, session } = await connect(t, mcp((msg, res) => {
    const token = msg.params._meta.progressToken
    openSse(res)
    res.write(sseEvent({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } }))
    res.write(sseEvent({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 2, total: 2, message: 'done' } }))
    res.end(sseEvent(result(msg.id, { content: [{ type: 'text', text: 'finished' }] })))
  }))
  const progress: unknown[] = []
  const answer = await session.request('tools/call', {
    name: 'slow',
    _meta: { progressToken: 'downstream-token', other: 'kept' }
  }, { timeout: TIMEOUT, onProgress: (params) => progress.push(params) })
  t.same(answer, { content: [{ type: 'text', text: 'finished' }] })

  const call = fixture.seen.find(isCall)?.body as Message
  t.type(call.params._meta.progressToken, 'number', 'the session asks for progress with its own (numeric) token')
  t.equal(call.params._meta.progressToken, call.id, 'the token is the request id')
  t.equal(call.params._meta.other, 'kept', 'the rest of _meta goes through')
  t.same(progress, [
    { progressToken: call.id, progress: 1, total: 2 },
    { progressToken: call.id, progress: 2, total: 2, message: 'done' }
  ])
})

test('a JSON-RPC error answer rejects with MCPGW_ERR_UPSTREAM_RPC and the error verbatim', async (t) => {
  const rpcError = { code: -32602, message: 'Invalid params: a must be a string', data: { field: 'a' } }
  const { session } = await connect(t, mcp((msg, res) => {
    if (msg.params.name === 'json') json(res, { jsonrpc: '2.0', id: msg.id, error: rpcError })
    else {
      openSse(res)
      res.end(sseEvent({ jsonrpc: '2.0', id: msg.id, error: rpcError }))
    }
  }))
  for (const name of ['json', 'sse']) {
    const err = await failure(session.request('tools/call', { name }, { timeout: TIMEOUT }))
    t.equal(err.code, 'MCPGW_ERR_UPSTREAM_RPC', name)
    t.same(err.rpcError, rpcError, `${name}: the upstream's error object, untouched`)
    t.match(err.message, /Invalid params: a must be a string/)
  }
})

test('HTTP 500 rejects with MCPGW_ERR_UPSTREAM_HTTP and the server\'s error text', async (t) => {
  const { session } = await connect(t, mcp((msg, res) => {
    if (msg.params.name === 'plain') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('database exploded\n')
    } else {
      res.writeHead(500, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Internal error: disk full' } }))
    }
  }))
  const plain = await failure(session.request('tools/call', { name: 'plain' }, { timeout: TIMEOUT }))
  t.equal(plain.code, 'MCPGW_ERR_UPSTREAM_HTTP')
  t.equal(plain.statusCode, 502)
  t.match(plain.message, /HTTP 500: database exploded/)
  const rpc = await failure(session.request('tools/call', { name: 'json' }, { timeout: TIMEOUT }))
  t.equal(rpc.code, 'MCPGW_ERR_UPSTREAM_HTTP')
  t.match(rpc.message, /HTTP 500: Internal error: disk full/, 'a JSON-RPC error body gives its message')
})

test('a 200 answer with content-type text/html rejects with MCPGW_ERR_UPSTREAM_PROTOCOL', async (t) => {
  const { session } = await connect(t, mcp((msg, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>login</body></html>')
  }))
  const err = await failure(session.request('tools/list', undefined, { timeout: TIMEOUT }))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_PROTOCOL')
  t.match(err.message, /content-type "text\/html"/)
})

test('an SSE answer that ends without the response rejects with MCPGW_ERR_UPSTREAM_PROTOCOL', async (t) => {
  const { session } = await connect(t, mcp((msg, res) => {
    openSse(res)
    res.write(': keep-alive\n\n')
    res.end(sseEvent({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } }))
  }))
  const err = await failure(session.request('tools/call', { name: 'x' }, { timeout: TIMEOUT }))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_PROTOCOL')
  t.match(err.message, /the answer to tools\/call ended without a response/)
})

test('an answer that is not what its content-type says rejects with MCPGW_ERR_UPSTREAM_PROTOCOL', async (t) => {
  const { session } = await connect(t, mcp((msg, res) => {
    if (msg.params.name === 'json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0",')
    } else if (msg.params.name === 'sse') {
      openSse(res)
      res.end('event: message\ndata: not json\n\n')
    } else {
      res.writeHead(202).end()
    }
  }))
  const json = await failure(session.request('tools/call', { name: 'json' }, { timeout: TIMEOUT }))
  t.match(json, { code: 'MCPGW_ERR_UPSTREAM_PROTOCOL', message: /answered tools\/call with a body that is not JSON/ })
  const sse = await failure(session.request('tools/call', { name: 'sse' }, { timeout: TIMEOUT }))
  t.match(sse, { code: 'MCPGW_ERR_UPSTREAM_PROTOCOL', message: /an SSE event that is not JSON: not json/ })
  const accepted = await failure(session.request('tools/call', { name: 'accepted' }, { timeout: TIMEOUT }))
  t.match(accepted, { code: 'MCPGW_ERR_UPSTREAM_PROTOCOL', message: /ended without a response \(HTTP 202\)/ }, 'a request answered 202')
  t.equal(session.inFlight, 0)
})

test('the per-call deadline rejects with MCPGW_ERR_UPSTREAM_TIMEOUT and cancels the call upstream', async (t) => {
  const { fixture, session } = await connect(t, mcp(() => {})) // never answers
  const err = await failure(session.request('tools/call', { name: 'hang' }, { timeout: 200 }))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_TIMEOUT')
  t.match(err.message, /did not answer tools\/call within 200ms/)
  const call = await fixture.next('the call', isCall)
  const cancel = await fixture.next('notifications/cancelled', isCancel)
  t.equal(cancel.method, 'POST')
  t.equal(cancel.headers['mcp-session-id'], 'sess-1')
  t.match(cancel.body, { params: { requestId: call.body?.id, reason: /within 200ms/ } })
  t.equal(session.inFlight, 0)
})

test('a Cancellation rejects with MCPGW_ERR_REQUEST_CANCELLED and cancels the call upstream', async (t) => {
  const { fixture, session } = await connect(t, mcp(() => {}))
  const cancellation = new Cancellation()
  const call = failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT, cancel: cancellation }))
  const received = await fixture.next('the call', isCall)
  cancellation.cancel('the client gave up')
  const err = await call
  t.equal(err.code, 'MCPGW_ERR_REQUEST_CANCELLED')
  t.match(err.message, /the client gave up/)
  const cancel = await fixture.next('notifications/cancelled', isCancel)
  t.match(cancel.body, { params: { requestId: received.body?.id, reason: /the client gave up/ } })

  const already = new Cancellation()
  already.cancel('before sending')
  const early = await failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT, cancel: already }))
  t.equal(early.code, 'MCPGW_ERR_REQUEST_CANCELLED', 'a call cancelled before it starts is never sent')
  t.equal(fixture.seen.filter(isCall).length, 1)
})

/** A server that can forget its sessions, as a restarted one does; `expired` answers a request for a forgotten one. */
function forgetful (expired: (res: ServerResponse) => void) {
  let generation = 0
  let known = new Set<string>()
  const route = mcp((msg, res, req) => {
    const sid = req.headers['mcp-session-id'] as string
    if (known.has(sid)) json(res, result(msg.id, { tools: [{ name: `tool-of-${sid}`, inputSchema: { type: 'object' } }] }))
    else expired(res)
  }, {
    sessionId: () => {
      const id = `sess-${++generation}`
      known.add(id)
      return id
    }
  })
  return { route, forget: () => { known = new Set() } }
}

const notFound = (res: ServerResponse) => res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found')
// What server-everything (the SDK's transport) answers for a session it does not know.
const badSession = (res: ServerResponse) => res.writeHead(400, { 'content-type': 'application/json' })
  .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: No valid session ID provided' } }))

const listed = (sid: string) => ({ tools: [{ name: `tool-of-${sid}`, inputSchema: { type: 'object' } }] })

for (const [kind, expired] of [['404', notFound], ['400 mentioning the session', badSession]] as const) {
  test(`a forgotten session (${kind}) is re-initialized transparently and the request retried`, async (t) => {
    const server = forgetful(expired)
    const { fixture, session } = await connect(t, server.route)
    let reinitialized = 0
    session.onReinitialized = () => { reinitialized++ }
    t.equal(session.sessionId, 'sess-1')
    server.forget()

    t.same(await session.request('tools/list', undefined, { timeout: TIMEOUT }), listed('sess-2'), 'the retried request succeeds')
    t.equal(session.sessionId, 'sess-2')
    t.equal(reinitialized, 1, 'onReinitialized is called')
    const inits = fixture.seen.filter(r => r.body?.method === 'initialize')
    t.equal(inits.length, 2)
    t.notOk(inits[1]?.headers['mcp-session-id'], 'the new initialize does not carry the forgotten session id')
    const lists = fixture.seen.filter(r => r.body?.method === 'tools/list').map(r => r.headers['mcp-session-id'])
    t.same(lists, ['sess-1', 'sess-2'])
  })
}

test('concurrent requests on a forgotten session share one re-initialization and all succeed', async (t) => {
  const held: ServerResponse[] = []
  // Both requests meet the forgotten session before either learns it: their answers go out together.
  const server = forgetful((res) => {
    held.push(res)
    if (held.length === 2) for (const r of held) notFound(r)
  })
  const { fixture, session } = await connect(t, server.route)
  let reinitialized = 0
  session.onReinitialized = () => { reinitialized++ }
  server.forget()
  const settled = await Promise.allSettled([
    session.request('tools/list', undefined, { timeout: TIMEOUT }),
    session.request('tools/list', undefined, { timeout: TIMEOUT })
  ])
  const recovered = { status: 'fulfilled', value: listed('sess-2') }
  t.ok(settled.some(s => s.status === 'fulfilled'), 'the request that learns of it first recovers')
  t.same(settled, [recovered, recovered], 'the other request is retried too')
  t.equal(reinitialized, 1)
  t.equal(fixture.seen.filter(r => r.body?.method === 'initialize').length, 2, 'one re-initialization')
})

test('a request that learns of the forgotten session after the re-initialization is retried on the new session', async (t) => {
  let held: ServerResponse | undefined
  const server = forgetful((res) => {
    if (held === undefined) held = res // the second request's answer is delayed until the first has recovered
    else notFound(res)
  })
  const { fixture, session } = await connect(t, server.route)
  let reinitialized = 0
  session.onReinitialized = () => { reinitialized++ }
  server.forget()
  // The request whose answer is held may be either one: whichever the server received first.
  const calls = [
    session.request('tools/list', undefined, { timeout: TIMEOUT }),
    session.request('tools/list', undefined, { timeout: TIMEOUT })
  ]
  t.same(await Promise.race(calls), listed('sess-2'), 'the first request recovers')
  notFound(held as ServerResponse)
  const answers = await Promise.all(calls)
  t.pass('the second request succeeds as well')
  t.same(answers, [listed('sess-2'), listed('sess-2')], 'both answered on the new session')
  t.equal(reinitialized, 1, 'onReinitialized is called once')
  t.equal(fixture.seen.filter(r => r.body?.method === 'initialize').length, 2, 'one re-initialization')
  t.equal(session.sessionId, 'sess-2', 'the session keeps the id it recovered with')
})

test('a 400 that does not mention the session is an HTTP error, not a forgotten session', async (t) => {
  const { fixture, session } = await connect(t, mcp((msg, res) => {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad Request: arguments are malformed')
  }))
  const err = await failure(session.request('tools/call', { name: 'x' }, { timeout: TIMEOUT }))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_HTTP')
  t.match(err.message, /HTTP 400: Bad Request: arguments are malformed/)
  t.equal(fixture.seen.filter(r => r.body?.method === 'initialize').length, 1, 'no re-initialization')
})

test('close() sends DELETE with the session id; later requests reject with MCPGW_ERR_UPSTREAM_CLOSED', async (t) => {
  const { fixture, session } = await connect(t, mcp(() => {}))
  const inFlight = failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT }))
  await fixture.next('the call', isCall)
  await session.close()
  const pending = await inFlight
  t.equal(pending.code, 'MCPGW_ERR_UPSTREAM_CLOSED', 'the call in flight fails')
  t.match(pending.message, /session closed/)
  const del = fixture.seen.find(r => r.method === 'DELETE')
  t.match(del?.headers, { 'mcp-session-id': 'sess-1', 'mcp-protocol-version': NEGOTIATED })
  t.ok(session.closed)

  const later = await failure(session.request('tools/list', undefined, { timeout: TIMEOUT }))
  t.equal(later.code, 'MCPGW_ERR_UPSTREAM_CLOSED')
  t.equal(later.sent, false, 'it was never sent, so another replica may take it')
  const count = fixture.seen.length
  await session.close()
  t.equal(fixture.seen.length, count, 'a second close sends nothing')
})

test('listen() opens a GET stream whose notifications reach the handlers', async (t) => {
  const streams: ServerResponse[] = []
  const { fixture, session } = await connect(t, mcp(() => {}, {
    get: (req, res) => {
      openSse(res)
      streams.push(res)
      if (streams.length === 1) {
        res.write('id: ev-1\n' + sseEvent({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }))
        res.end() // the server drops the stream: the session opens it again, resuming after ev-1
      }
    }
  }))
  const notifications: JsonRpcNotification[] = []
  session.handlers = { onNotification: (msg) => notifications.push(msg), onRequest: () => Promise.resolve({}) }
  session.listen()

  await waitFor('the notification', () => notifications.length > 0)
  t.same(notifications, [{ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }])
  const gets = fixture.seen.filter(r => r.method === 'GET')
  t.match(gets[0]?.headers, { accept: 'text/event-stream', 'mcp-session-id': 'sess-1', 'mcp-protocol-version': NEGOTIATED })
  t.notOk(gets[0]?.headers['content-type'], 'a GET has no body, so no content-type')
  const again = await fixture.next('the stream opened again', r => r.method === 'GET' && r !== gets[0])
  t.equal(again.headers['last-event-id'], 'ev-1', 'the reopened stream resumes after the last event id')
})

test('a GET answered 405 stops listening quietly', async (t) => {
  const { fixture, session } = await connect(t, mcp((msg, res) => json(res, result(msg.id, {}))), { streamRetry: 5 })
  session.listen()
  await fixture.next('the GET', r => r.method === 'GET')
  // Absence of a retry can only be observed over a quiet period: 40 retry intervals here.
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(fixture.seen.filter(r => r.method === 'GET').length, 1, 'no second GET')
  t.same(await session.request('ping', undefined, { timeout: TIMEOUT }), {}, 'the session still works')
  t.notOk(session.closed)
})

test('a server-to-client request on an SSE answer is answered with a POST', async (t) => {
  let call: { id: unknown, res: ServerResponse } | undefined
  const base = mcp((msg, res) => {
    call = { id: msg.id, res }
    openSse(res)
    res.write(sseEvent({ jsonrpc: '2.0', id: 's1', method: 'ping' }))
  })
  const { fixture, session } = await connect(t, (req, res) => {
    const body = req.body
    if (body?.id === 's1' && body.method === undefined) { // the answer to our ping: now finish the call
      res.writeHead(202).end()
      call?.res.end(sseEvent(result(call.id, { content: [] })))
      return
    }
    base(req, res)
  })
  t.same(await session.request('tools/call', { name: 'needs-a-ping' }, { timeout: TIMEOUT }), { content: [] },
    'the call completes once the server has its answer')
  const answer = fixture.seen.find(r => r.body?.id === 's1')
  t.same(answer?.body, { jsonrpc: '2.0', id: 's1', result: {} })
  t.match(answer?.headers, { 'mcp-session-id': 'sess-1', 'content-type': 'application/json' })
})

test('regression: an answer whose error is no JSON-RPC error object, or that has neither result nor error, is a protocol failure', async (t) => {
  const { session } = await connect(t, mcp((msg, res) => {
    switch (msg.params.name) {
      case 'string-error': return json(res, { jsonrpc: '2.0', id: msg.id, error: 'it broke' })
      case 'null-error': return json(res, { jsonrpc: '2.0', id: msg.id, error: null })
      case 'codeless-error': return json(res, { jsonrpc: '2.0', id: msg.id, error: { message: 'no code' } })
      case 'empty': return json(res, { jsonrpc: '2.0', id: msg.id })
      default: return json(res, result(msg.id, null))
    }
  }))
  for (const name of ['string-error', 'null-error', 'codeless-error', 'empty']) {
    const err = await failure(session.request('tools/call', { name }, { timeout: TIMEOUT }))
    t.equal(err.code, 'MCPGW_ERR_UPSTREAM_PROTOCOL', name)
    t.match(err.message, name === 'empty' ? /neither a result nor an error/ : /not a JSON-RPC error object/, name)
  }
  t.equal(await session.request('tools/call', { name: 'null-result' }, { timeout: TIMEOUT }), null, 'a null result is a result')
})

test('regression: a server request that is not one is refused with -32600; past 64 held at once, requests are refused with -32603', async (t) => {
  let call: { id: unknown, res: ServerResponse } | undefined
  const refusals = () => fixture.seen.filter(r => r.method === 'POST' && r.body?.error !== undefined)
  const base = mcp((msg, res) => {
    call = { id: msg.id, res }
    openSse(res)
    res.write(sseEvent({ jsonrpc: '2.0', id: 'bad-method', method: 42 }))
    res.write(sseEvent({ jsonrpc: '2.0', id: 'bad-params', method: 'sampling/createMessage', params: [1, 2] }))
    res.write(sseEvent({ jsonrpc: '2.0', id: { object: 'id' }, method: 'ping' })) // no id a response could carry: dropped
    for (let i = 0; i < 70; i++) res.write(sseEvent({ jsonrpc: '2.0', id: `s${i}`, method: 'sampling/createMessage', params: {} }))
  })
  const { fixture, session } = await connect(t, (req, res) => {
    if (req.body?.method === undefined && req.body?.id !== undefined) res.writeHead(202).end()
    else base(req, res)
  })
  const held: string[] = []
  session.handlers = {
    onNotification () {},
    onRequest ({ message }) {
      held.push(String(message.id))
      return new Promise(() => {}) // a client that never answers: the request stays held
    }
  }
  const answer = session.request('tools/call', { name: 'flood' }, { timeout: TIMEOUT })
  await waitFor('the refusals', () => refusals().length === 8 ? true : undefined)
  const byId = new Map(refusals().map(r => [r.body?.id as unknown, r.body?.error as { code: number, message: string }]))
  t.equal(byId.get('bad-method')?.code, -32600, 'a method that is not a string')
  t.equal(byId.get('bad-params')?.code, -32600, 'params that are not an object')
  t.equal(held.length, 64, 'the first 64 requests reach the handlers')
  t.same([...byId.keys()].filter(id => String(id).startsWith('s')), ['s64', 's65', 's66', 's67', 's68', 's69'], 'the rest are refused')
  t.match(byId.get('s64')?.message, /holds 64 requests/)
  call?.res.end(sseEvent(result(call.id, { content: [] })))
  t.same(await answer, { content: [] }, 'the call itself completes')
})

test('regression: a server asking for retry: 0 cannot make the GET stream spin, and its loss is reported once per run', async (t) => {
  const { fixture, session } = await connect(t, mcp(() => {}, {
    get: (req, res) => {
      openSse(res)
      res.end('retry: 0\nid: ev\n' + sseEvent({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } }))
    }
  }))
  let lost = 0
  session.onStreamLost = () => { lost++ }
  session.listen()
  await fixture.next('the GET', r => r.method === 'GET')
  // Reopening waits at least 250 ms whatever the hint: over 700 ms, a handful of GETs, not thousands.
  await new Promise(resolve => setTimeout(resolve, 700))
  const gets = fixture.seen.filter(r => r.method === 'GET').length
  t.ok(gets >= 2 && gets <= 5, `the stream was reopened with a floor on the delay (${gets} GETs)`)
  t.equal(lost, 1, 'the first loss is news; the retries after it are not')
})

test('regression: a server flooding requests gets at most 64 refusals on their way at once; the rest are dropped', async (t) => {
  const held: ServerResponse[] = []
  let releasing = false
  let call: { id: unknown, res: ServerResponse } | undefined
  const base = mcp((msg, res) => {
    call = { id: msg.id, res }
    openSse(res)
    for (let i = 0; i < 64 + 500; i++) res.write(sseEvent({ jsonrpc: '2.0', id: `s${i}`, method: 'sampling/createMessage', params: {} }))
  })
  const { fixture, session } = await connect(t, (req, res) => {
    if (req.body?.method !== undefined || req.body?.id === undefined) base(req, res)
    else if (releasing) res.writeHead(202).end()
    else held.push(res) // a refusal, not taken yet: the ones after it wait in the pool's queue
  })
  session.handlers = { onNotification () {}, onRequest: () => new Promise(() => {}) }
  const answer = session.request('tools/call', { name: 'flood' }, { timeout: TIMEOUT })
  await waitFor('the first refusals', () => held.length > 0 ? true : undefined)
  await new Promise(resolve => setTimeout(resolve, 200))
  releasing = true
  for (const res of held) res.writeHead(202).end()
  await waitFor('64 refusals', () => fixture.seen.filter(r => r.body?.error !== undefined).length >= 64 ? true : undefined)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(fixture.seen.filter(r => r.body?.error !== undefined).length, 64, '500 requests, 64 refusals: the rest came while those were on their way')
  call?.res.end(sseEvent(result(call.id, { content: [] })))
  t.same(await answer, { content: [] })
})
