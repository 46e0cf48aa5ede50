import { test } from 'tap'
import { startGateway, waitFor } from '../helper.js'

/**
 * The overload guard (@fastify/under-pressure) end to end: with a heap bound the process is always past, every
 * request is refused at once with 503 + Retry-After (a JSON-RPC error on /mcp), except the health probes.
 */

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })

test('past a bound, requests are refused fast with 503 and Retry-After; probes still answer', async (t) => {
  const gateway = await startGateway(t, { servers: [], overload: { maxHeapUsedBytes: 1, retryAfterSec: 3 } })
  const post = () => fetch(gateway.mcp, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INIT })
  // The guard samples memory once a second.
  await waitFor('the guard to see the heap', async () => (await post()).status === 503)
  const refused = await post()
  t.equal(refused.headers.get('retry-after'), '3')
  t.match(await refused.json(), { jsonrpc: '2.0', id: null, error: { code: -32000, message: /the gateway is overloaded \(heap \d+ bytes\); retry in 3 s/, data: { code: 'MCPGW_ERR_OVERLOADED', retryAfterMs: 3000 } } })
  const rest = await fetch(gateway.base + '/mcp/tools/list', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(rest.status, 503)
  t.match(await rest.json(), { code: 'MCPGW_ERR_OVERLOADED' })
  t.equal((await fetch(gateway.base + '/health/live')).status, 200, 'liveness answers')
  t.equal((await fetch(gateway.base + '/health/ready')).status, 200, 'readiness too')
})

test('with every bound at 0 the guard is off', async (t) => {
  const gateway = await startGateway(t, { servers: [], overload: { maxEventLoopDelayMs: 0 } })
  t.equal(gateway.app.hasDecorator('isUnderPressure'), false)
})
