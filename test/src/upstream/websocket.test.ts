import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { CallToolRequestSchema, type JSONRPCMessage, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import { type Test, test } from 'tap'
import { type WebSocket, WebSocketServer } from 'ws'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../../src/config/normalize.js'
import { silentLogger } from '../../../src/logger.js'
import { UpstreamConnection } from '../../../src/upstream/connection.js'
import type { UpstreamSession } from '../../../src/upstream/session.js'
import { WebSocketSession } from '../../../src/upstream/websocket.js'
import { freePort, waitFor } from '../../helper.js'

/**
 * MCP over WebSocket. There is no published WebSocket MCP server to test against (the SDK ships only a client, and
 * v2 dropped even that), so the fixture is the SDK's low-level `Server` behind a `ws` WebSocketServer on 127.0.0.1,
 * joined by the ~20-line transport below: the same shape any WebSocket MCP server has.
 */

const IDENTITY = { capabilities: {}, clientInfo: { name: 'ws-test', version: '1.0.0' } }
const TIMEOUT = 10_000
const noHandlers = { onNotification () {}, onRequest: async () => ({}) }

/** One socket as an SDK transport: one JSON-RPC message per text frame. */
class SocketTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void

  constructor (private readonly socket: WebSocket) {}

  async start (): Promise<void> {
    this.socket.on('message', (data) => {
      try {
        this.onmessage?.(JSON.parse(String(data)) as JSONRPCMessage)
      } catch (err) {
        this.onerror?.(err as Error)
      }
    })
    this.socket.on('close', () => this.onclose?.())
    this.socket.on('error', (err) => this.onerror?.(err))
  }

  async send (message: JSONRPCMessage): Promise<void> {
    this.socket.send(JSON.stringify(message))
  }

  async close (): Promise<void> {
    this.socket.close()
  }
}

function mcpServer (): Server {
  const server = new Server({ name: 'ws-fixture', version: '1.0.0' }, { capabilities: { tools: {} } })
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [
      { name: 'echo', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
      { name: 'hang', inputSchema: { type: 'object' } }
    ]
  }))
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    if (request.params.name === 'hang') return new Promise(() => {})
    return { content: [{ type: 'text', text: String(request.params.arguments?.text) }] }
  })
  return server
}

interface Fixture {
  url: string
  /** The upgrade request headers of each connection, oldest first. */
  upgrades: IncomingHttpHeaders[]
  /** The server side of each connection, oldest first. */
  sockets: WebSocket[]
  /** How each connection closed, as [code, reason]. */
  closes: Array<[number, string]>
}

interface FixtureOptions {
  /** Selects the subprotocol; default: `mcp` when offered. */
  handleProtocols?: (protocols: Set<string>) => string | false
  /** Takes each socket instead of the MCP server. */
  onSocket?: (socket: WebSocket) => void
}

async function startFixture (t: Test, options: FixtureOptions = {}): Promise<Fixture> {
  const fixture: Fixture = { url: '', upgrades: [], sockets: [], closes: [] }
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: options.handleProtocols ?? ((protocols) => protocols.has('mcp') ? 'mcp' : false)
  })
  wss.on('connection', (socket, req) => {
    fixture.upgrades.push(req.headers)
    fixture.sockets.push(socket)
    socket.on('close', (code, reason) => fixture.closes.push([code, reason.toString()]))
    if (options.onSocket !== undefined) options.onSocket(socket)
    else mcpServer().connect(new SocketTransport(socket)).catch(() => {})
  })
  await new Promise<void>(resolve => wss.once('listening', resolve))
  t.teardown(() => {
    for (const client of wss.clients) client.terminate()
    return new Promise<void>(resolve => wss.close(() => resolve()))
  })
  fixture.url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/mcp`
  return fixture
}

function wsSession (t: Test, url: string, headers: Record<string, string> = {}): WebSocketSession {
  const session = new WebSocketSession(normalizeServer({ id: 'ws-up', url, timeout: TIMEOUT, headers }, DEFAULT_UPSTREAM))
  t.teardown(() => session.close())
  return session
}

function echo (session: UpstreamSession, text: string) {
  return session.request('tools/call', { name: 'echo', arguments: { text } }, { timeout: TIMEOUT })
}

function failure (promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  return promise.then(
    (value) => { throw new Error(`expected a rejection, got ${JSON.stringify(value)}`) },
    (err: Error & Record<string, unknown>) => err
  )
}

test('initialize and tools/call over the socket; the configured headers reach the upgrade request', async (t) => {
  const fixture = await startFixture(t)
  const session = wsSession(t, fixture.url, { Authorization: 'Bearer ws-token', 'X-Tenant': 'acme' })
  const init = await session.initialize(IDENTITY, TIMEOUT)
  t.match(init, { protocolVersion: '2025-11-25', serverInfo: { name: 'ws-fixture' }, capabilities: { tools: {} } })
  t.match(await session.request('tools/list', undefined, { timeout: TIMEOUT }), { tools: [{ name: 'echo' }, { name: 'hang' }] })
  t.same(await echo(session, 'over ws'), { content: [{ type: 'text', text: 'over ws' }] })
  t.match(fixture.upgrades, [{ authorization: 'Bearer ws-token', 'x-tenant': 'acme', 'sec-websocket-protocol': 'mcp' }])
  t.equal(fixture.sockets.length, 1, 'one socket')
})

test('a server that does not select the mcp subprotocol is refused clearly', async (t) => {
  const fixture = await startFixture(t, { handleProtocols: () => false })
  const session = wsSession(t, fixture.url)
  const err = await failure(session.initialize(IDENTITY, TIMEOUT))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_PROTOCOL')
  t.match(err.message, /^Upstream ws-up broke the protocol: did not select the WebSocket subprotocol "mcp" \(Server sent no subprotocol\)/)
  t.ok(session.closed)

  const other = await startFixture(t, { handleProtocols: () => 'other' })
  const wrong = await failure(wsSession(t, other.url).initialize(IDENTITY, TIMEOUT))
  t.match(wrong, { code: 'MCPGW_ERR_UPSTREAM_PROTOCOL', message: /did not select the WebSocket subprotocol "mcp" \(Server sent an invalid subprotocol\)/ })
})

test('the socket closing fails the calls in flight with the close code and reason', async (t) => {
  const fixture = await startFixture(t)
  const session = wsSession(t, fixture.url)
  await session.initialize(IDENTITY, TIMEOUT)
  const call = failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT }))
  await new Promise(resolve => setTimeout(resolve, 50))
  fixture.sockets[0]?.close(4001, 'server going away')
  const err = await call
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_CLOSED')
  t.equal(err.message, 'Connection to upstream ws-up closed: the WebSocket closed with code 4001: server going away')
  t.equal(await session.ended, 'the WebSocket closed with code 4001: server going away')
  await t.rejects(echo(session, 'after'), { code: 'MCPGW_ERR_UPSTREAM_CLOSED', sent: false })
})

test('close() closes the socket with 1000 and fails what is in flight', async (t) => {
  const fixture = await startFixture(t)
  const session = wsSession(t, fixture.url)
  await session.initialize(IDENTITY, TIMEOUT)
  const call = failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT }))
  await session.close('bye')
  t.match(await call, { code: 'MCPGW_ERR_UPSTREAM_CLOSED', message: /closed: bye$/ })
  await waitFor('the server to see the close', () => fixture.closes.length === 1)
  t.same(fixture.closes, [[1000, '']])
  t.equal(await session.ended, 'bye')
  await session.close()
  await t.rejects(session.initialize(IDENTITY, TIMEOUT), { code: 'MCPGW_ERR_UPSTREAM_CLOSED' })
})

test('the deadline fails the call and sends notifications/cancelled', async (t) => {
  const received: Array<Record<string, any>> = []
  const fixture = await startFixture(t, {
    onSocket: (socket) => {
      socket.on('message', (data) => {
        const msg = JSON.parse(String(data)) as Record<string, any>
        received.push(msg)
        if (msg.method === 'initialize') {
          socket.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'raw', version: '1' } } }))
        }
      })
    }
  })
  const session = wsSession(t, fixture.url)
  await session.initialize(IDENTITY, TIMEOUT)
  const err = await failure(session.request('tools/call', { name: 'slow' }, { timeout: 200 }))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_TIMEOUT')
  const cancel = await waitFor('notifications/cancelled', () => received.find(m => m.method === 'notifications/cancelled'))
  const call = received.find(m => m.method === 'tools/call')
  t.match(cancel, { params: { requestId: call?.id, reason: /within 200ms/ } })
  t.same(received.map(m => m.method), ['initialize', 'notifications/initialized', 'tools/call', 'notifications/cancelled'])
})

for (const [what, frame, code, reason] of [
  ['a binary frame', (socket: WebSocket) => socket.send(Buffer.from('{}'), { binary: true }), 1003, /sent a binary frame/],
  ['a text frame that is not JSON', (socket: WebSocket) => socket.send('not json'), 1007, /sent a text frame that is not JSON: not json/]
] as const) {
  test(`${what} is a protocol error that ends the session`, async (t) => {
    const fixture = await startFixture(t)
    const session = wsSession(t, fixture.url)
    await session.initialize(IDENTITY, TIMEOUT)
    const call = failure(session.request('tools/call', { name: 'hang' }, { timeout: TIMEOUT }))
    await new Promise(resolve => setTimeout(resolve, 50))
    frame(fixture.sockets[0] as WebSocket)
    const err = await call
    t.equal(err.code, 'MCPGW_ERR_UPSTREAM_CLOSED')
    t.match(err.message, reason)
    await waitFor('the socket to close', () => fixture.closes.length === 1)
    t.equal(fixture.closes[0]?.[0], code, `closed with ${code}`)
  })
}

test('an upgrade refused with an HTTP status fails with it; a handshake that never completes times out', async (t) => {
  const server = createServer((req, res) => {
    res.writeHead(401, { 'content-type': 'text/plain' }).end('bad token')
  })
  const upgrades: Duplex[] = []
  server.on('upgrade', (req, socket: Duplex) => {
    upgrades.push(socket)
    if (req.url === '/refused') socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nbad token')
    // '/silent': never answered
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of upgrades) socket.destroy() // upgraded sockets are the handler's to close, not the server's
    return new Promise(resolve => server.close(resolve))
  })
  const base = `ws://127.0.0.1:${(server.address() as { port: number }).port}`
  const refused = await failure(wsSession(t, base + '/refused').initialize(IDENTITY, TIMEOUT))
  t.equal(refused.code, 'MCPGW_ERR_UPSTREAM_HTTP')
  t.match(refused.message, /^Upstream ws-up answered HTTP 401: bad token/)
  const silent = await failure(wsSession(t, base + '/silent').initialize(IDENTITY, 300))
  t.equal(silent.code, 'MCPGW_ERR_UPSTREAM_TIMEOUT')
  t.match(silent.message, /did not answer the WebSocket handshake within 300ms/)
})

test('nothing listening: the error says the socket could not be opened', async (t) => {
  const err = await failure(wsSession(t, `ws://127.0.0.1:${await freePort()}/mcp`).initialize(IDENTITY, TIMEOUT))
  t.equal(err.code, 'MCPGW_ERR_UPSTREAM_CLOSED')
  t.match(err.message, /cannot open the WebSocket: connect ECONNREFUSED/)
})

test('an UpstreamConnection over WebSocket: up with its tools, one socket per client, down at once when it closes', async (t) => {
  const fixture = await startFixture(t)
  const states: Array<[string, string | undefined]> = []
  const conn = new UpstreamConnection(normalizeServer({ id: 'ws', url: fixture.url, timeout: TIMEOUT }, DEFAULT_UPSTREAM), {
    defaults: { ...DEFAULT_UPSTREAM, reconnectMin: 50, reconnectMax: 200 },
    clientInfo: { name: 'ws-test', version: '1.0.0' },
    log: silentLogger,
    observer: { state: (c) => states.push([c.state, c.reason]), listing () {} }
  })
  t.teardown(() => conn.close())
  t.equal(conn.definition.transport, 'websocket', 'inferred from ws://')
  await conn.start()
  t.same([conn.state, conn.reason], ['up', undefined])
  t.same(conn.listing?.tools.map(tool => tool.name), ['echo', 'hang'])
  t.notOk(conn.shared)
  const client = await conn.openSession(IDENTITY, noHandlers)
  t.type(client, WebSocketSession)
  t.not(client, conn.control)
  t.equal(fixture.sockets.length, 2, 'the client has its own socket')
  t.same(await echo(client, 'client'), { content: [{ type: 'text', text: 'client' }] })
  await client.close()

  const seen = states.length
  fixture.sockets[0]?.close(1001, 'restarting')
  await waitFor('the upstream back up', () => states.length > seen && conn.state === 'up')
  t.match(states.slice(seen), [
    ['down', 'the WebSocket closed with code 1001: restarting'],
    ['connecting', 'the WebSocket closed with code 1001: restarting'],
    ['up', undefined]
  ])
  t.equal(fixture.sockets.length, 3, 'a new socket')
})
