import { once } from 'node:events'
import { test, type Test } from 'tap'
import { WebSocket } from 'ws'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { everythingStdio, type Gateway, startGateway } from '../helper.js'

/**
 * Rate limits (`rateLimit`) in one gateway process, in front of server-everything over stdio, with the official SDK
 * client, raw HTTP, REST and WebSocket: per caller on every transport (batch elements and frames each count), per
 * tool glob, per address at the HTTP edge (failed authentications included), and what a refused client is told.
 * Limits shared through Redis are in rate-limit-redis.test.ts.
 */

const KEYS = { alice: 'alice-key-0123456789abcdef', bob: 'bob-key-0123456789abcdefg' }
const apiKeys = [{ name: 'alice', key: KEYS.alice }, { name: 'bob', key: KEYS.bob }]
const MINUTE = 60_000

async function clientOf (t: Test, gateway: Gateway, key: string): Promise<Client> {
  const client = new Client({ name: 'limits', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(gateway.mcp, { requestInit: { headers: { 'x-api-key': key } } }))
  t.teardown(() => client.close())
  return client
}

async function refusal (call: Promise<unknown>): Promise<McpError> {
  try {
    await call
  } catch (err) {
    if (err instanceof McpError) return err
    throw err
  }
  throw new Error('the call was not refused')
}

async function post (gateway: Gateway, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(gateway.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body)
  })
  return { status: response.status, headers: response.headers, body: await response.json() as Record<string, unknown> & Array<Record<string, unknown>> }
}

async function session (gateway: Gateway, key: string): Promise<Record<string, string>> {
  const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
  const response = await fetch(gateway.mcp, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': key },
    body: JSON.stringify(init)
  })
  const headers = { 'x-api-key': key, 'mcp-session-id': response.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-06-18' }
  await fetch(gateway.mcp, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  return headers
}

test('per principal: each caller has its own budget; the refused call is an MCP error that says when to retry', async (t) => {
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: { apiKeys },
    rateLimit: { perPrincipal: { max: 4, windowMs: MINUTE } }
  })
  const alice = await clientOf(t, gateway, KEYS.alice)
  const bob = await clientOf(t, gateway, KEYS.bob)
  await alice.listTools()
  await alice.callTool({ name: 'e__echo', arguments: { message: 'one' } })
  await alice.callTool({ name: 'e__echo', arguments: { message: 'two' } })
  await alice.listPrompts()
  const refused = await refusal(alice.callTool({ name: 'e__echo', arguments: { message: 'five' } }))
  t.equal(refused.code, -32000)
  t.match(refused.message, /Too many requests: "alice" may send 4 per minute \(rateLimit\.perPrincipal\); retry in \d+ s/)
  t.match(refused.data, { code: 'MCPGW_ERR_RATE_LIMITED', limit: 'perPrincipal', retryAfterMs: Number })
  t.ok((refused.data as { retryAfterMs: number }).retryAfterMs > 10_000 && (refused.data as { retryAfterMs: number }).retryAfterMs <= 15_000,
    'one request in 15 s comes back')
  t.same(await alice.ping(), {}, 'ping is never limited')
  t.match(await bob.callTool({ name: 'e__echo', arguments: { message: 'bob' } }), { content: [{ text: 'Echo: bob' }] }, 'another principal is not affected')

  const status = await (await fetch(gateway.base + '/status', { headers: { 'x-api-key': KEYS.bob } })).json() as Record<string, unknown>
  t.same(status.rateLimit, { counting: 'local', limits: ['perPrincipal'] })
  const metrics = await (await fetch(gateway.base + '/metrics', { headers: { 'x-api-key': KEYS.bob } })).text()
  t.match(metrics, /^mcp_gateway_rate_limited_total\{limit="perPrincipal"\} 1$/m, 'refusals are counted by limit')
})

test('every element of a batch and every WebSocket frame counts; REST answers 429 with Retry-After and RateLimit-*', async (t) => {
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: { apiKeys },
    rateLimit: { perPrincipal: { max: 3, windowMs: MINUTE } }
  })
  const headers = await session(gateway, KEYS.alice)
  const batch = [1, 2, 3, 4, 5].map(id => ({ jsonrpc: '2.0', id, method: 'tools/list' }))
  const answer = await post(gateway, '/mcp', batch, { ...headers, 'mcp-protocol-version': '2025-03-26' })
  t.equal(answer.status, 200)
  const byId = new Map(answer.body.map(a => [a.id, a]))
  t.equal([1, 2, 3, 4, 5].filter(id => byId.get(id)?.result !== undefined).length, 3, 'three elements served')
  t.equal([1, 2, 3, 4, 5].filter(id => (byId.get(id)?.error as { data?: { code?: string } })?.data?.code === 'MCPGW_ERR_RATE_LIMITED').length, 2,
    'two refused, each with its own id')

  const rest = await post(gateway, '/mcp/tools/call', { name: 'e__echo', arguments: { message: 'x' } }, { 'x-api-key': KEYS.alice })
  t.equal(rest.status, 429)
  t.match(rest.body, { code: 'MCPGW_ERR_RATE_LIMITED', message: /rateLimit\.perPrincipal/ })
  t.ok(Number(rest.headers.get('retry-after')) >= 1, 'Retry-After in seconds')
  t.equal(rest.headers.get('ratelimit-limit'), '3')
  t.equal(rest.headers.get('ratelimit-remaining'), '0')
  t.ok(Number(rest.headers.get('ratelimit-reset')) >= 1)

  const socket = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws', 'mcp', { headers: { 'x-api-key': KEYS.bob } })
  t.teardown(() => socket.close())
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })
  const answers = new Map<number, { result?: unknown, error?: { data?: { code?: string, retryAfterMs?: number } } }>()
  const all = new Promise<void>(resolve => {
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { id?: number, result?: unknown, error?: { data?: { code?: string, retryAfterMs?: number } } }
      if (typeof message.id === 'number') answers.set(message.id, message)
      if (answers.size === 6) resolve()
    })
  })
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws', version: '1' } } }))
  socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  for (let id = 1; id <= 5; id++) socket.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }))
  await all
  t.ok(answers.get(0)?.result, 'initialize is not counted')
  const refusedFrames = [...answers.values()].filter(a => a.error?.data?.code === 'MCPGW_ERR_RATE_LIMITED')
  t.equal(refusedFrames.length, 2, 'frames beyond the budget refused')
  t.ok(refusedFrames.every(a => (a.error?.data?.retryAfterMs ?? 0) > 0), 'each with the retry time')
})

test('per tool: a glob shared per caller, or by the whole gateway', async (t) => {
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: { apiKeys },
    rateLimit: {
      perTool: {
        'e__get-*': { max: 2, windowMs: MINUTE },
        e__echo: { max: 3, windowMs: MINUTE, per: 'gateway' }
      }
    }
  })
  const alice = await clientOf(t, gateway, KEYS.alice)
  const bob = await clientOf(t, gateway, KEYS.bob)
  await alice.callTool({ name: 'e__get-sum', arguments: { a: 1, b: 2 } })
  await alice.callTool({ name: 'e__get-tiny-image', arguments: {} })
  const tool = await refusal(alice.callTool({ name: 'e__get-sum', arguments: { a: 1, b: 2 } }))
  t.match(tool.message, /"alice" calling tools matching "e__get-\*" may send 2 per minute \(rateLimit\.perTool\)/)
  const unknown = await refusal(bob.callTool({ name: 'e__get-nothing-such', arguments: {} }))
  t.match(unknown.message, /Unknown tool/, 'a name that does not exist is unknown, not limited…')
  t.match(await bob.callTool({ name: 'e__get-sum', arguments: { a: 1, b: 2 } }), { content: [{ text: /3/ }] }, '…and cost bob nothing')
  t.match(await bob.callTool({ name: 'e__get-sum', arguments: { a: 1, b: 2 } }), { content: [{ text: /3/ }] }, 'per principal: bob has his own')
  t.ok(await alice.listTools(), 'lists and other tools are not limited by a tool limit')

  await alice.callTool({ name: 'e__echo', arguments: { message: '1' } })
  await bob.callTool({ name: 'e__echo', arguments: { message: '2' } })
  await alice.callTool({ name: 'e__echo', arguments: { message: '3' } })
  const shared = await refusal(bob.callTool({ name: 'e__echo', arguments: { message: '4' } }))
  t.match(shared.message, /everyone together calling tools matching "e__echo" may send 3 per minute/)

  // The WebSocket envelope names the upstream's own tool: counted under the name clients see all the same.
  const socket = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws', 'mcp', { headers: { 'x-api-key': KEYS.alice } })
  t.teardown(() => socket.close())
  await once(socket, 'open')
  const envelope = new Promise<{ data: { error?: { message: string } } }>(resolve => {
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { type?: string, data: { error?: { message: string } } }
      if (message.type === 'response') resolve(message)
    })
  })
  socket.send(JSON.stringify({ type: 'message', target: 'e', id: 1, data: { method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } } }))
  t.match((await envelope).data.error?.message, /calling tools matching "e__echo"/, 'an envelope call of echo counts as e__echo')
})

test('per tool: a call refused by one matching entry takes nothing from the others; hidden tools cost nothing', async (t) => {
  const CAROL = 'carol-key-0123456789abcde'
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: {
      apiKeys: [{ name: 'alice', key: KEYS.alice, roles: ['everything'] }, { name: 'carol', key: CAROL, roles: ['echo-only'] }],
      roles: { everything: { tools: { allow: ['*'] } }, 'echo-only': { tools: { allow: ['e__echo'] } } }
    },
    rateLimit: { perTool: { 'e__*': { max: 3, windowMs: MINUTE, per: 'gateway' }, 'e__get-sum': { max: 1, windowMs: MINUTE } } }
  })
  const alice = await clientOf(t, gateway, KEYS.alice)
  const carol = await clientOf(t, gateway, CAROL)
  await alice.callTool({ name: 'e__get-sum', arguments: { a: 1, b: 2 } })
  t.match((await refusal(alice.callTool({ name: 'e__get-sum', arguments: { a: 1, b: 2 } }))).message, /matching "e__get-sum"/, 'alice: one get-sum a minute')
  for (let i = 0; i < 3; i++) t.match((await refusal(carol.callTool({ name: 'e__get-sum', arguments: { a: 1, b: 2 } }))).message, /Unknown tool/, 'carol may not see it')
  await carol.callTool({ name: 'e__echo', arguments: { message: '2' } })
  await alice.callTool({ name: 'e__echo', arguments: { message: '3' } })
  t.pass('the shared e__* budget of 3 held the two echoes after the first get-sum: neither the refusal nor the hidden calls spent it')
  t.match((await refusal(carol.callTool({ name: 'e__echo', arguments: { message: '4' } }))).message, /everyone together calling tools matching "e__\*"/)
})

test('per address at the HTTP edge: failed authentications count, /health is exempt, the MCP endpoint answers a JSON-RPC error', async (t) => {
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: { apiKeys },
    rateLimit: { perIp: { max: 5, windowMs: MINUTE } }
  })
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }
  const first = await post(gateway, '/mcp', init, { 'x-api-key': KEYS.alice })
  t.equal(first.status, 200)
  t.equal(first.headers.get('ratelimit-limit'), '5', 'the limit on every answer')
  t.equal(first.headers.get('ratelimit-remaining'), '4')
  for (let i = 0; i < 4; i++) t.equal((await post(gateway, '/mcp', init, { 'x-api-key': 'wrong-key-' + String(i).repeat(16) })).status, 401)
  const refused = await post(gateway, '/mcp', init, { 'x-api-key': KEYS.alice })
  t.equal(refused.status, 429, 'a valid key is refused too once the address is over its budget')
  t.match(refused.body, { jsonrpc: '2.0', id: null, error: { code: -32000, message: /address 127\.0\.0\.1 may send 5 per minute \(rateLimit\.perIp\)/, data: { code: 'MCPGW_ERR_RATE_LIMITED', limit: 'perIp' } } })
  t.ok(Number(refused.headers.get('retry-after')) >= 1)
  t.equal(refused.headers.get('ratelimit-remaining'), '0')
  const rest = await post(gateway, '/mcp/tools/list', {}, { 'x-api-key': KEYS.alice })
  t.equal(rest.status, 429)
  t.match(rest.body, { statusCode: 429, code: 'MCPGW_ERR_RATE_LIMITED' })
  t.equal((await fetch(gateway.base + '/health')).status, 200, 'liveness is never limited')
  const upgrade = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws', 'mcp', { headers: { 'x-api-key': KEYS.alice } })
  upgrade.on('error', () => {})
  const [, response] = await once(upgrade, 'unexpected-response') as [unknown, { statusCode: number }]
  upgrade.terminate()
  t.equal(response.statusCode, 429, 'a WebSocket upgrade is refused before it is accepted')
})

test('without auth, the per-principal limit counts each client address', async (t) => {
  const gateway = await startGateway(t, { servers: [everythingStdio('e')], rateLimit: { perPrincipal: { max: 2, windowMs: MINUTE, burst: 2 } } })
  const client = new Client({ name: 'anon', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(gateway.mcp))
  t.teardown(() => client.close())
  await client.listTools()
  await client.listPrompts()
  const refused = await refusal(client.listTools())
  t.match(refused.message, /address 127\.0\.0\.1 may send 2 per minute/)
})
