// Bench fixture: the fastest MCP upstream we can write by hand (plain node:http, JSON answers, no SDK), so the
// numbers measure the proxies in front of it rather than the server. Forked by run.mjs; it listens on a free
// loopback port and reports it over IPC. One tool, `echo`, answers its `text` argument.
import { createServer } from 'node:http'
import { error, readBody, readMessage, result, send } from './answers.mjs'

const TOOLS = '{"tools":[{"name":"echo","description":"Answers its text argument",' +
  '"inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}]}'
const CAPABILITIES = { tools: { listChanged: true } }
const SERVER_INFO = { name: 'bench-upstream', version: '1.0.0' }

let sessions = 0

const server = createServer((req, res) => {
  if (req.url !== '/mcp') {
    res.statusCode = 404
    res.end()
  } else if (req.method === 'POST') {
    readBody(req, (body) => answer(res, body))
  } else if (req.method === 'DELETE') {
    res.end()
  } else {
    res.statusCode = 405
    res.setHeader('allow', 'POST, DELETE')
    res.end()
  }
})

function answer (res, body) {
  const message = readMessage(res, body)
  if (message === undefined) return
  const { id, method, params } = message
  // Notifications and responses need no answer.
  if (id === undefined || method === undefined) {
    res.statusCode = 202
    return res.end()
  }
  switch (method) {
    case 'tools/call': {
      const text = params?.arguments?.text
      if (params?.name !== 'echo' || typeof text !== 'string') return send(res, 200, error(id, -32602, 'echo needs arguments.text'))
      return send(res, 200, result(id, '{"content":[{"type":"text","text":' + JSON.stringify(text) + '}]}'))
    }
    case 'initialize':
      res.setHeader('mcp-session-id', 'bench-' + ++sessions)
      return send(res, 200, result(id, JSON.stringify({
        protocolVersion: params?.protocolVersion,
        capabilities: CAPABILITIES,
        serverInfo: SERVER_INFO
      })))
    case 'tools/list': return send(res, 200, result(id, TOOLS))
    case 'ping': return send(res, 200, result(id, '{}'))
    default: return send(res, 200, error(id, -32601, 'Method not found: ' + method))
  }
}

// Outlive the keep-alive of the clients' pools, so sockets are not closed under them mid-run.
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
process.on('disconnect', () => process.exit(0))
