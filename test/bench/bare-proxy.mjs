// Bench reference: the least a Fastify + undici forwarding proxy can do — POST /mcp forwarded verbatim to the
// upstream through one undici Pool, the upstream's status, content type, session id and body returned as they
// came. Its ratio to direct is the ceiling the gateway is compared with. Forked by run.mjs with the upstream URL as
// its argument; it listens on a free loopback port and reports it over IPC.
import Fastify from 'fastify'
import { Pool } from 'undici'

const target = new URL(process.argv[2])
// Sized and kept alive like the gateway's pool for one upstream (its default maxConnections is 16).
const pool = new Pool(target.origin, { connections: 16, pipelining: 1, keepAliveTimeout: 30_000 })

const app = Fastify({ logger: false, keepAliveTimeout: 72_000 })
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => done(null, body))
app.addHook('onClose', () => pool.destroy())

app.post('/mcp', async (request, reply) => {
  const headers = {
    'content-type': 'application/json',
    accept: request.headers.accept ?? 'application/json, text/event-stream'
  }
  const session = request.headers['mcp-session-id']
  if (session !== undefined) headers['mcp-session-id'] = session
  const version = request.headers['mcp-protocol-version']
  if (version !== undefined) headers['mcp-protocol-version'] = version
  const res = await pool.request({ path: target.pathname, method: 'POST', headers, body: request.body })
  const body = Buffer.from(await res.body.arrayBuffer())
  reply.code(res.statusCode)
  if (res.headers['content-type'] !== undefined) reply.header('content-type', res.headers['content-type'])
  if (res.headers['mcp-session-id'] !== undefined) reply.header('mcp-session-id', res.headers['mcp-session-id'])
  return reply.send(body)
})

await app.listen({ host: '127.0.0.1', port: 0 })
process.send({ port: app.server.address().port })
process.on('disconnect', () => process.exit(0))
