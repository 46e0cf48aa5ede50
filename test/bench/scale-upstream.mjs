// Scale-bench fixture: any number of Streamable HTTP MCP servers on one loopback port, server i at `/u/<i>/mcp`, in
// plain node:http (no SDK) so that 1000 of them cost one process and the numbers measure the gateway. Every server
// offers the same ten tools, one of them `echo`. Sessions and held-open GET streams are counted per path, so the
// bench can ask (over IPC: `{ type: 'stats' }`) how much the gateway holds against it. Forked by scale.mjs; it
// listens on a free loopback port and reports it over IPC.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { error, readMessage, result, send } from './answers.mjs'

const PATH = /^\/u\/(\d+)\/mcp$/
const KEEP_ALIVE_EVERY = 15_000
const CAPABILITIES = { tools: { listChanged: true } }
const SERVER_INFO = { name: 'scale-upstream', version: '1.0.0' }
const TOOLS = JSON.stringify({ tools: tools() })

/** session id → its path and its open GET streams */
const sessions = new Map()
/** path → { sessions, streams }: what is live there now */
const perPath = new Map()
const totals = { sessionsOpened: 0, sessionsDeleted: 0, streamsOpened: 0, requests: 0, acceptErrors: 0 }
const streams = new Set()
let connections = 0

const server = createServer((req, res) => {
  totals.requests++
  // An explicit Connection header keeps Node from sending its `Keep-Alive: timeout=…` hint, which undici would obey
  // over the gateway's own pool keep-alive: how long idle sockets live is then the gateway's choice, as with most
  // servers, while the long keepAliveTimeout below means the fixture never closes one under it.
  res.setHeader('connection', req.headers.connection === 'close' ? 'close' : 'keep-alive')
  const path = req.url
  if (!PATH.test(path)) return send(res, 404, error(null, -32000, `No MCP server at ${path}; use /u/<i>/mcp`))
  const id = req.headers['mcp-session-id']
  const session = id === undefined ? undefined : sessions.get(id)
  if (id !== undefined && session?.path !== path) return send(res, 404, error(null, -32001, `Session not found: ${id}`))
  if (req.method === 'POST') {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => { body += chunk })
    req.on('end', () => answer(res, path, session, body))
  } else if (req.method === 'GET') {
    if (!/text\/event-stream/.test(req.headers.accept ?? '')) return send(res, 406, error(null, -32000, 'GET needs accept: text/event-stream'))
    if (session === undefined) return send(res, 400, error(null, -32000, 'GET needs an mcp-session-id'))
    openStream(req, res, session)
  } else if (req.method === 'DELETE') {
    if (session === undefined) return send(res, 400, error(null, -32000, 'DELETE needs an mcp-session-id'))
    endSession(id, session)
    res.end()
  } else {
    res.setHeader('allow', 'GET, POST, DELETE')
    send(res, 405, error(null, -32000, 'Method not allowed'))
  }
})

function answer (res, path, session, body) {
  const message = readMessage(res, body)
  if (message === undefined) return
  const { id, method, params } = message
  if (method === 'initialize') {
    if (session !== undefined) return send(res, 400, error(id ?? null, -32600, 'initialize with a session id'))
    res.setHeader('mcp-session-id', openSession(path))
    return send(res, 200, result(id, JSON.stringify({ protocolVersion: params?.protocolVersion, capabilities: CAPABILITIES, serverInfo: SERVER_INFO })))
  }
  if (session === undefined) return send(res, 400, error(id ?? null, -32000, 'Bad Request: no mcp-session-id'))
  // Notifications and responses need no answer.
  if (id === undefined || method === undefined) {
    res.statusCode = 202
    return res.end()
  }
  switch (method) {
    case 'tools/call': return send(res, 200, call(id, params))
    case 'tools/list': return send(res, 200, result(id, TOOLS))
    case 'ping': return send(res, 200, result(id, '{}'))
    default: return send(res, 200, error(id, -32601, 'Method not found: ' + method))
  }
}

function call (id, params) {
  const name = params?.name
  if (name === 'echo') {
    const text = params?.arguments?.text
    if (typeof text !== 'string') return error(id, -32602, 'echo needs arguments.text')
    return result(id, '{"content":[{"type":"text","text":' + JSON.stringify(text) + '}]}')
  }
  if (typeof name === 'string' && /^tool_[1-9]$/.test(name)) return result(id, '{"content":[{"type":"text","text":"' + name + ' done"}]}')
  return error(id, -32602, 'Unknown tool: ' + name)
}

function openSession (path) {
  const id = randomUUID()
  sessions.set(id, { path, streams: new Set() })
  live(path).sessions++
  totals.sessionsOpened++
  return id
}

function endSession (id, session) {
  sessions.delete(id)
  live(session.path).sessions--
  totals.sessionsDeleted++
  for (const res of session.streams) res.end()
}

function openStream (req, res, session) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
  session.streams.add(res)
  streams.add(res)
  live(session.path).streams++
  totals.streamsOpened++
  res.once('close', () => {
    session.streams.delete(res)
    streams.delete(res)
    live(session.path).streams--
  })
}

function live (path) {
  let counts = perPath.get(path)
  if (counts === undefined) perPath.set(path, counts = { sessions: 0, streams: 0 })
  return counts
}

function stats () {
  let paths = 0
  let maxSessions = 0
  let maxStreams = 0
  for (const counts of perPath.values()) {
    if (counts.sessions > 0) paths++
    maxSessions = Math.max(maxSessions, counts.sessions)
    maxStreams = Math.max(maxStreams, counts.streams)
  }
  return { ...totals, sessions: sessions.size, streams: streams.size, connections, paths, maxSessionsPerPath: maxSessions, maxStreamsPerPath: maxStreams }
}

/** Ten tools with small input schemas of the usual shapes (strings, enums, integers with bounds, arrays). */
function tools () {
  const list = [{
    name: 'echo',
    description: 'Answers its text argument',
    inputSchema: { type: 'object', properties: { text: { type: 'string', description: 'What to answer' } }, required: ['text'] },
    annotations: { readOnlyHint: true }
  }]
  for (let i = 1; i <= 9; i++) {
    list.push({
      name: `tool_${i}`,
      description: `Searches collection ${i} and returns the matching records`,
      inputSchema: {
        type: 'object',
        properties: {
          query: { type: 'string', description: 'Search terms' },
          limit: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
          sort: { type: 'string', enum: ['relevance', 'newest', 'oldest'] },
          tags: { type: 'array', items: { type: 'string' } }
        },
        required: ['query']
      }
    })
  }
  return list
}

// One timer for every stream, not one each: tens of thousands of streams may be open.
setInterval(() => { for (const res of streams) res.write(': keep-alive\n\n') }, KEEP_ALIVE_EVERY).unref()

// Out of fds, accept() fails and the server emits 'error': count it and go on serving the connections it has.
server.on('error', (err) => {
  if (err.code !== 'EMFILE' && err.code !== 'ENFILE') throw err
  totals.acceptErrors++
})
server.on('connection', (socket) => {
  connections++
  socket.once('close', () => { connections-- })
})
// Outlive the gateway's keep-alive (30 s), so idle sockets are closed by it, never under it; no connection cap.
server.keepAliveTimeout = 10 * 60_000
server.maxConnections = Infinity
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }))
process.on('message', (message) => {
  if (message?.type === 'stats') process.send({ type: 'stats', seq: message.seq, stats: stats() })
})
process.on('disconnect', () => process.exit(0))
