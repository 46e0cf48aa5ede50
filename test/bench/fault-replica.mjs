// Bench fixture for `npm run bench:faults`: an MCP upstream (plain node:http, JSON answers, no SDK) whose tools
// answer after a delay — `read` (annotated readOnlyHint, so the gateway may retry it elsewhere) and `write` (not) —
// each answer naming the replica. Argv: name, port (0: any), delay in ms. The delay can be changed over IPC
// ({ delay }), and so can failing ({ fail: true|false }): while failing, every tools/call is answered at once with
// HTTP 500 and a short text body, while initialize, ping and tools/list still answer — a replica a health check sees
// as up and only a circuit breaker can take out. The port is reported ({ port }) once listening, so a replica killed
// with SIGKILL can be started again on the same port.
import { createServer } from 'node:http'
import { error, readBody, readMessage, result, send } from './answers.mjs'

const [name = 'replica', portArg = '0', delayArg = '50'] = process.argv.slice(2)
let delay = Number(delayArg)
let failing = false
const TOOLS = JSON.stringify({
  tools: [
    { name: 'read', description: 'Reads', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
    { name: 'write', description: 'Writes', inputSchema: { type: 'object' } }
  ]
})
let sessions = 0

const server = createServer((req, res) => {
  if (req.method === 'DELETE') return res.end()
  if (req.method !== 'POST') {
    res.statusCode = 405
    return res.end()
  }
  readBody(req, (body) => answer(res, body))
})

function answer (res, body) {
  const message = readMessage(res, body)
  if (message === undefined) return
  const { id, method, params } = message
  if (id === undefined || method === undefined) {
    res.statusCode = 202
    return res.end()
  }
  switch (method) {
    case 'tools/call':
      if (failing) {
        res.statusCode = 500
        res.setHeader('content-type', 'text/plain')
        return res.end(`${name} is failing`)
      }
      if (params?.name !== 'read' && params?.name !== 'write') return send(res, 200, error(id, -32602, 'unknown tool'))
      return setTimeout(() => send(res, 200, result(id, JSON.stringify({ content: [{ type: 'text', text: name }] }))), delay)
    case 'initialize':
      res.setHeader('mcp-session-id', `${name}-${++sessions}`)
      return send(res, 200, result(id, JSON.stringify({ protocolVersion: params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name, version: '1.0.0' } })))
    case 'tools/list': return send(res, 200, result(id, TOOLS))
    case 'ping': return send(res, 200, result(id, '{}'))
    default: return send(res, 200, error(id, -32601, 'Method not found: ' + method))
  }
}

process.on('message', (message) => {
  if (typeof message?.delay === 'number') delay = message.delay
  if (typeof message?.fail === 'boolean') failing = message.fail
})
server.keepAliveTimeout = 60_000
server.listen(Number(portArg), '127.0.0.1', () => process.send({ port: server.address().port }))
process.on('disconnect', () => process.exit(0))
