import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { type Test, test } from 'tap'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../../src/config/normalize.js'
import type { Logger } from '../../../src/logger.js'
import { type ConnectionObserver, UpstreamConnection } from '../../../src/upstream/connection.js'
import { HttpUpstream } from '../../../src/upstream/http-upstream.js'
import type { UpstreamSession } from '../../../src/upstream/session.js'
import { SseSession } from '../../../src/upstream/sse.js'
import { startEverythingSse, waitFor } from '../../helper.js'

/**
 * The legacy HTTP+SSE transport, against server-everything in `sse` mode (the SDK's SSEServerTransport) and, for
 * what a well-behaved server never does, hand-written `node:http` fixtures on 127.0.0.1:0.
 */

type Message = Record<string, any>

const IDENTITY = { capabilities: {}, clientInfo: { name: 'sse-test', version: '1.0.0' } }
const TIMEOUT = 10_000
const noHandlers = { onNotification () {}, onRequest: async () => ({}) }
const quiet: ConnectionObserver = { state () {}, listing () {} }

interface LogEntry { level: string, msg: string | undefined }

class CapturingLogger implements Logger {
  readonly entries: LogEntry[] = []
  error (_obj: object, msg?: string) { this.entries.push({ level: 'error', msg }) }
  warn (_obj: object, msg?: string) { this.entries.push({ level: 'warn', msg }) }
  info (_obj: object, msg?: string) { this.entries.push({ level: 'info', msg }) }
  debug (_obj: object, msg?: string) { this.entries.push({ level: 'debug', msg }) }
  child () { return this }
}

function connection (t: Test, url: string, transport: 'sse' | 'streamable-http', log: Logger = new CapturingLogger(), observer = quiet) {
  const conn = new UpstreamConnection(normalizeServer({ id: 'legacy', url, transport, timeout: TIMEOUT }, DEFAULT_UPSTREAM), {
    defaults: { ...DEFAULT_UPSTREAM, connectTimeout: 5000, reconnectMin: 50, reconnectMax: 200 },
    clientInfo: { name: 'sse-test', version: '1.0.0' },
    // server-everything offers its conditional tools only to clients that declare these.
    clientCapabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: {} },
    log,
    observer
  })
  t.teardown(() => conn.close())
  return conn
}

/** An SseSession on its own HttpUpstream, both closed when the test ends. */
function sseSession (t: Test, url: string, headers: Record<string, string> = {}) {
  const definition = normalizeServer({ id: 'sse-up', url, transport: 'sse', timeout: TIMEOUT, headers }, DEFAULT_UPSTREAM)
  const upstream = new HttpUpstream(definition, { connectTimeout: 5000, streamRetry: 20, streamRetryMax: 200 })
  const session = new SseSession(upstream)
  t.teardown(async () => {
    await session.close()
    await upstream.close()
  })
  return session
}

function echo (session: UpstreamSession, message: string) {
  return session.request('tools/call', { name: 'echo', arguments: { message } }, { timeout: TIMEOUT })
}

function failure (promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  return promise.then(
    (value) => { throw new Error(`expected a rejection, got ${JSON.stringify(value)}`) },
    (err: Error & Record<string, unknown>) => err
  )
}

test('server-everything over legacy SSE: the connection comes up with its tools and calls go through', async (t) => {
  const everything = await startEverythingSse(t)
  const conn = connection(t, everything.url, 'sse')
  await conn.start()
  t.same([conn.state, conn.reason], ['up', undefined])
  const tools = conn.listing?.tools.map(tool => tool.name) ?? []
  t.ok(tools.includes('echo'), 'echo is listed')
  t.ok(tools.includes('get-sum'), 'get-sum is listed')
  t.match(conn.listing, { serverInfo: { name: 'mcp-servers/everything' }, protocolVersion: '2025-11-25' })
  t.notOk(conn.shared, 'one SSE stream per client: not shared')
  t.type(conn.control, SseSession)
  t.match((conn.control as SseSession).endpoint, /^\/message\?sessionId=[0-9a-f-]+$/, 'the endpoint the server named')
  t.same(await echo(conn.control as UpstreamSession, 'over sse'), { content: [{ type: 'text', text: 'Echo: over sse' }] })
})

test('server-everything: each client gets its own, independent session', async (t) => {
  const everything = await startEverythingSse(t)
  const conn = connection(t, everything.url, 'sse')
  await conn.start()
  const a = await conn.openSession({ ...IDENTITY, clientInfo: { name: 'a', version: '1' } }, noHandlers) as SseSession
  const b = await conn.openSession({ ...IDENTITY, clientInfo: { name: 'b', version: '1' } }, noHandlers) as SseSession
  t.type(a, SseSession)
  t.not(a, b)
  t.not(a, conn.control)
  t.not(a.endpoint, b.endpoint, 'two streams, two server sessions')
  t.same(await Promise.all([echo(a, 'to a'), echo(b, 'to b')]), [
    { content: [{ type: 'text', text: 'Echo: to a' }] },
    { content: [{ type: 'text', text: 'Echo: to b' }] }
  ])
  await a.close()
  t.equal(await a.ended, 'session closed')
  await t.rejects(echo(a, 'closed'), { code: 'MCPGW_ERR_UPSTREAM_CLOSED', sent: false })
  t.same(await echo(b, 'still here'), { content: [{ type: 'text', text: 'Echo: still here' }] }, 'the other session is untouched')
  t.same(await echo(conn.control as UpstreamSession, 'control'), { content: [{ type: 'text', text: 'Echo: control' }] })
  await b.close()
})

test('server-everything: the stream ending fails the calls in flight, with the reason', async (t) => {
  const everything = await startEverythingSse(t)
  const session = sseSession(t, everything.url)
  await session.initialize(IDENTITY, TIMEOUT)
  const progress: unknown[] = []
  const call = failure(session.request('tools/call', {
    name: 'trigger-long-running-operation',
    arguments: { duration: 30, steps: 30 }
  }, { timeout: TIMEOUT, onProgress: (params) => progress.push(params) }))
  await waitFor('the operation to report progress', () => progress.length > 0)
  await everything.stop()
  const err = await call
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_CLOSED')
  t.match(err.message, /^Connection to upstream sse-up closed: the SSE stream (ended|failed)/)
  t.match(await session.ended, /^the SSE stream (ended|failed)/)
  t.ok(session.closed)
  await t.rejects(echo(session, 'after'), { code: 'MCPGW_ERR_UPSTREAM_CLOSED', sent: false })
})

test('server-everything: a Streamable HTTP upstream whose initialize POST gets 404 falls back to legacy SSE', async (t) => {
  const everything = await startEverythingSse(t)
  const log = new CapturingLogger()
  const conn = connection(t, everything.url, 'streamable-http', log)
  await conn.start()
  t.same([conn.state, conn.reason], ['up', undefined])
  t.type(conn.control, SseSession, 'the control session is a legacy one')
  t.ok(conn.listing?.tools.some(tool => tool.name === 'echo'))
  t.ok(log.entries.some(e => e.level === 'info' && e.msg === 'upstream speaks the legacy HTTP+SSE transport'), 'logged at info')
  const client = await conn.openSession(IDENTITY, noHandlers)
  t.type(client, SseSession, 'sessions opened later use the legacy transport at once')
  t.same(await echo(client, 'fallback'), { content: [{ type: 'text', text: 'Echo: fallback' }] })
  await client.close()
})

interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: Message | undefined
}

interface LegacyFixture {
  url: string
  seen: Seen[]
  /** The SSE streams opened, oldest first. */
  streams: ServerResponse[]
  /** Sends a message on the newest stream. */
  send (message: unknown): void
  /** Resolves when the server saw the newest stream's client go away. */
  streamClosed (): Promise<void>
}

interface LegacyOptions {
  /** Writes the start of a new stream; default: the endpoint event. */
  open?: (res: ServerResponse) => void
  /** Answers a POST; default: 202 Accepted. */
  post?: (req: Seen, res: ServerResponse, fixture: LegacyFixture) => void
  /** Called with each message POSTed (after it was accepted). */
  onMessage?: (msg: Message, fixture: LegacyFixture) => void
}

const ENDPOINT = 'messages?sessionId=fixture-1'

async function startLegacy (t: Test, options: LegacyOptions = {}): Promise<LegacyFixture> {
  const seen: Seen[] = []
  const streams: ServerResponse[] = []
  const closed: Array<Promise<void>> = []
  const fixture: LegacyFixture = {
    url: '',
    seen,
    streams,
    send: (message) => { streams.at(-1)?.write('event: message\ndata: ' + JSON.stringify(message) + '\n\n') },
    streamClosed: () => closed.at(-1) as Promise<void>
  }
  const server = createServer((req, res) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { text += chunk })
    req.on('end', () => {
      const entry = { method: req.method as string, url: req.url as string, headers: req.headers, body: text === '' ? undefined : JSON.parse(text) as Message }
      seen.push(entry)
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        res.flushHeaders()
        streams.push(res)
        closed.push(new Promise(resolve => res.once('close', resolve)))
        if (options.open !== undefined) options.open(res)
        else res.write(`event: endpoint\ndata: ${ENDPOINT}\n\n`)
        return
      }
      if (options.post !== undefined) options.post(entry, res, fixture)
      else res.writeHead(202).end('Accepted')
      if (entry.body !== undefined) options.onMessage?.(entry.body, fixture)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise(resolve => server.close(resolve))
  })
  fixture.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp/sse`
  return fixture
}

/** Answers initialize, ping, tools/list, and tools/call with its arguments (except tool "hang"); ignores the rest. */
function answering (msg: Message, fixture: LegacyFixture): void {
  if (msg.method === 'initialize') {
    fixture.send({
      jsonrpc: '2.0',
      id: msg.id,
      result: { protocolVersion: '2024-11-05', capabilities: { tools: {} }, serverInfo: { name: 'legacy-fixture', version: '1.0.0' } }
    })
  } else if (msg.method === 'ping') {
    fixture.send({ jsonrpc: '2.0', id: msg.id, result: {} })
  } else if (msg.method === 'tools/list') {
    fixture.send({ jsonrpc: '2.0', id: msg.id, result: { tools: [{ name: 'x', inputSchema: { type: 'object' } }] } })
  } else if (msg.method === 'tools/call' && msg.params.name !== 'hang') {
    fixture.send({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: JSON.stringify(msg.params.arguments) }] } })
  }
}

test('the endpoint is resolved against the stream URL; headers go on the GET and every POST, no Streamable HTTP ones', async (t) => {
  const fixture = await startLegacy(t, { onMessage: answering })
  const session = sseSession(t, fixture.url, { Authorization: 'Bearer legacy-token' })
  const init = await session.initialize(IDENTITY, TIMEOUT)
  t.match(init, { protocolVersion: '2024-11-05', serverInfo: { name: 'legacy-fixture' } })
  t.equal(session.endpoint, '/mcp/messages?sessionId=fixture-1', 'relative to /mcp/sse')
  t.same(await session.request('tools/call', { name: 'x', arguments: { a: 1 } }, { timeout: TIMEOUT }), { content: [{ type: 'text', text: '{"a":1}' }] })

  const [get, ...posts] = fixture.seen
  t.match(get, { method: 'GET', url: '/mcp/sse', headers: { accept: 'text/event-stream', authorization: 'Bearer legacy-token' } })
  t.same(posts.map(p => [p.method, p.url, p.body?.method]), [
    ['POST', '/mcp/messages?sessionId=fixture-1', 'initialize'],
    ['POST', '/mcp/messages?sessionId=fixture-1', 'notifications/initialized'],
    ['POST', '/mcp/messages?sessionId=fixture-1', 'tools/call']
  ])
  for (const post of posts) {
    t.match(post.headers, { 'content-type': 'application/json', authorization: 'Bearer legacy-token' })
    t.notOk(post.headers['mcp-session-id'], 'no Mcp-Session-Id')
    t.notOk(post.headers['mcp-protocol-version'], 'no MCP-Protocol-Version')
  }
})

test('a stream that never sends the endpoint event fails after the connect timeout, clearly', async (t) => {
  const fixture = await startLegacy(t, { open: (res) => res.write(': hello\n\nevent: message\ndata: {"jsonrpc":"2.0","method":"x"}\n\n') })
  const session = sseSession(t, fixture.url)
  const err = await failure(session.initialize(IDENTITY, 300))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_PROTOCOL')
  t.match(err.message, /^Upstream sse-up broke the protocol: opened the SSE stream but sent no endpoint event within 300ms/)
  t.ok(session.closed)
  await fixture.streamClosed()
  t.pass('the stream was closed')
  t.equal(fixture.seen.filter(r => r.method === 'POST').length, 0, 'nothing was POSTed')
})

test('a GET that is never answered fails after the connect timeout', async (t) => {
  const server = createServer(() => {}) // accepts, never answers
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise(resolve => server.close(resolve))
  })
  const session = sseSession(t, `http://127.0.0.1:${(server.address() as { port: number }).port}/sse`)
  const err = await failure(session.initialize(IDENTITY, 300))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_TIMEOUT')
  t.match(err.message, /did not answer GET \/sse \(the SSE stream\) within 300ms/)
})

test('a GET answered with an error status or a non-SSE body fails with what the server said', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/refused') res.writeHead(401, { 'content-type': 'text/plain' }).end('missing token')
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const refused = await failure(sseSession(t, base + '/refused').initialize(IDENTITY, TIMEOUT))
  t.equal(refused.code, 'MCPGW_ERR_UPSTREAM_HTTP')
  t.match(refused.message, /Upstream sse-up answered HTTP 401: missing token/)
  const json = await failure(sseSession(t, base + '/json').initialize(IDENTITY, TIMEOUT))
  t.equal(json.code, 'MCPGW_ERR_UPSTREAM_PROTOCOL')
  t.match(json.message, /content-type "application\/json" \(expected text\/event-stream\)/)
})

test('a stream that ends before the endpoint event, or names another origin, fails clearly', async (t) => {
  const ends = await startLegacy(t, { open: (res) => res.end() })
  const ended = await failure(sseSession(t, ends.url).initialize(IDENTITY, TIMEOUT))
  t.match(ended, { code: 'MCPGW_ERR_UPSTREAM_PROTOCOL', message: /ended the SSE stream before sending the endpoint event/ })
  const elsewhere = await startLegacy(t, { open: (res) => res.write('event: endpoint\ndata: http://127.0.0.2:1/messages\n\n') })
  const foreign = await failure(sseSession(t, elsewhere.url).initialize(IDENTITY, TIMEOUT))
  t.match(foreign, { code: 'MCPGW_ERR_UPSTREAM_PROTOCOL', message: /an endpoint on another origin \(<url>, the stream is on <url>\)/ },
    'the message a client may see names no address')
})

test('a POST answered 500 fails the request with the upstream and the status', async (t) => {
  const fixture = await startLegacy(t, {
    onMessage: answering,
    post: (req, res) => {
      if (req.body?.method === 'tools/call') res.writeHead(500, { 'content-type': 'text/plain' }).end('database exploded')
      else res.writeHead(202).end('Accepted')
    }
  })
  const session = sseSession(t, fixture.url)
  await session.initialize(IDENTITY, TIMEOUT)
  const err = await failure(session.request('tools/call', { name: 'x' }, { timeout: TIMEOUT }))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_HTTP')
  t.match(err.message, /^Upstream sse-up answered HTTP 500: database exploded/)
  t.equal(session.inFlight, 0)
  t.notOk(session.closed)
  t.same(await session.request('ping', undefined, { timeout: TIMEOUT }), {}, 'the session goes on')
})

test('an initialize POST answered 500 names the upstream and the status', async (t) => {
  const fixture = await startLegacy(t, { post: (req, res) => res.writeHead(500).end('no') })
  const err = await failure(sseSession(t, fixture.url).initialize(IDENTITY, TIMEOUT))
  t.match(err, { code: 'MCPGW_ERR_UPSTREAM_HTTP', message: /Upstream sse-up answered HTTP 500: no/ })
})

test('the deadline fails the call and sends notifications/cancelled; server messages reach the handlers', async (t) => {
  const fixture = await startLegacy(t, { onMessage: answering })
  const session = sseSession(t, fixture.url)
  const notifications: Message[] = []
  session.handlers = { onNotification: (msg) => notifications.push(msg), onRequest: async () => ({ roots: [] }) }
  await session.initialize(IDENTITY, TIMEOUT)
  const err = await failure(session.request('tools/call', { name: 'hang' }, { timeout: 200 }))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_TIMEOUT')
  const call = fixture.seen.find(r => r.body?.method === 'tools/call')
  const cancel = await waitFor('notifications/cancelled', () => fixture.seen.find(r => r.body?.method === 'notifications/cancelled'))
  t.match(cancel.body, { params: { requestId: call?.body?.id, reason: /within 200ms/ } })

  fixture.send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })
  fixture.send({ jsonrpc: '2.0', id: 'r1', method: 'roots/list' })
  await waitFor('the notification', () => notifications.length > 0)
  t.same(notifications, [{ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }])
  const answer = await waitFor('the answer to roots/list', () => fixture.seen.find(r => r.body?.id === 'r1'))
  t.same(answer.body, { jsonrpc: '2.0', id: 'r1', result: { roots: [] } }, 'a server request is answered with a POST')
})

test('a message event that is not JSON ends the session as a protocol error', async (t) => {
  const fixture = await startLegacy(t, { onMessage: answering })
  const session = sseSession(t, fixture.url)
  await session.initialize(IDENTITY, TIMEOUT)
  const call = failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT }))
  await waitFor('the call', () => fixture.seen.find(r => r.body?.method === 'tools/call'))
  fixture.streams[0]?.write('event: message\ndata: not json\n\n')
  const err = await call
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_CLOSED')
  t.match(err.message, /the SSE stream failed: .*an SSE message event that is not JSON: not json/)
  await fixture.streamClosed()
})

test('close() ends the stream and fails what is in flight', async (t) => {
  const fixture = await startLegacy(t, { onMessage: answering })
  const session = sseSession(t, fixture.url)
  await session.initialize(IDENTITY, TIMEOUT)
  const call = failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT }))
  await session.close('bye')
  t.match(await call, { code: 'MCPGW_ERR_UPSTREAM_CLOSED', message: /closed: bye/ })
  await fixture.streamClosed()
  t.pass('the server saw the stream close')
  t.equal(await session.ended, 'bye')
  const count = fixture.seen.length
  await session.close()
  t.equal(fixture.seen.length, count, 'a second close does nothing')
  await t.rejects(session.initialize(IDENTITY, TIMEOUT), { code: 'MCPGW_ERR_UPSTREAM_CLOSED' })
})

test('close() while waiting for the endpoint fails initialize at once', async (t) => {
  const fixture = await startLegacy(t, { open: () => {} })
  const session = sseSession(t, fixture.url)
  const init = failure(session.initialize(IDENTITY, TIMEOUT))
  await waitFor('the GET', () => fixture.streams.length === 1)
  await session.close('stopping')
  t.match(await init, { code: 'MCPGW_ERR_UPSTREAM_CLOSED', message: /stopping/ })
})

test('the fallback that fails too reports both attempts', async (t) => {
  const fixture = await startLegacy(t, {
    open: (res) => res.end(),
    post: (req, res) => res.writeHead(405, { allow: 'GET' }).end('Method Not Allowed')
  })
  const conn = connection(t, fixture.url, 'streamable-http')
  await conn.start()
  t.equal(conn.state, 'down')
  t.match(conn.reason, /failed as Streamable HTTP \(Upstream legacy answered HTTP 405: Method Not Allowed\) and as legacy HTTP\+SSE \(.*ended the SSE stream before sending the endpoint event\)/)
})

test('a Streamable HTTP upstream that answers initialize 500 does not fall back', async (t) => {
  const fixture = await startLegacy(t, { post: (req, res) => res.writeHead(500).end('broken') })
  const conn = connection(t, fixture.url, 'streamable-http')
  await conn.start()
  t.equal(conn.state, 'down')
  t.match(conn.reason, /^Upstream legacy answered HTTP 500: broken$/)
  t.equal(fixture.seen.filter(r => r.method === 'GET').length, 0, 'no GET was tried')
})

test('a legacy upstream whose stream ends goes down at once and comes back', async (t) => {
  const fixture = await startLegacy(t, { onMessage: answering })
  const states: Array<[string, string | undefined]> = []
  const conn = connection(t, fixture.url, 'sse', new CapturingLogger(), { state: (c) => states.push([c.state, c.reason]), listing () {} })
  await conn.start()
  t.same([conn.state, conn.reason], ['up', undefined])
  const seen = states.length
  fixture.streams[0]?.end()
  await waitFor('the upstream back up', () => states.length > seen && conn.state === 'up')
  t.match(states.slice(seen), [['down', 'the SSE stream ended'], ['connecting', 'the SSE stream ended'], ['up', undefined]])
  t.equal(fixture.streams.length, 2, 'a new stream')
})
