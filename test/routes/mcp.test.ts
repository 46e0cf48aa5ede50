import { type Test, test } from 'tap'
import { request } from 'undici'
import type { FastifyInstance } from 'fastify'
import type { StreamableHttpChannel } from '../../src/transport/streamable-http.js'
import { startGateway, waitFor } from '../helper.js'
import { type FixtureTool, sleep, startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * The Streamable HTTP endpoint at the wire level: sessions, status codes and JSON-RPC error codes per the MCP
 * transport rules, the Origin/Host guard, pagination and cursors. Raw HTTP so every header and code is visible.
 */

const JSON_AND_SSE = 'application/json, text/event-stream'

let gatewayMcp: URL
let gatewayApp: FastifyInstance

async function setup (t: Test, config: Record<string, unknown> = {}) {
  const fixture = await startHttpFixture(t, {
    name: 'fx',
    tools: Array.from({ length: 12 }, (_, i): FixtureTool => ({ name: `tool_${String(i).padStart(2, '0')}` })).concat([{
      name: 'slow',
      handler: async (args, signal) => {
        await sleep(Number(args.ms ?? 50), signal)
        return { content: [{ type: 'text', text: 'done' }] }
      }
    }])
  })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: fixture.url }], ...config })
  gatewayMcp = gateway.mcp
  gatewayApp = gateway.app
  const post = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await request(gateway.mcp, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: JSON_AND_SSE, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body)
    })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
  }
  const initialize = async (protocolVersion = '2025-11-25') => {
    const res = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } }
    })
    const sessionId = res.headers['mcp-session-id'] as string
    await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sessionId })
    return { res, sessionId }
  }
  return { fixture, gateway, post, initialize }
}

test('initialize opens a session and negotiates the protocol version', async (t) => {
  const { post, initialize } = await setup(t)
  const { res, sessionId } = await initialize()
  t.equal(res.status, 200)
  t.match(sessionId, /^[0-9a-f-]{36}$/, 'a session id is issued')
  const body = res.json()
  t.equal(body.id, 1)
  t.equal(body.result.protocolVersion, '2025-11-25')
  t.same(body.result.capabilities.tools, { listChanged: true })
  t.equal(body.result.serverInfo.name, 'fastify-mcp-gateway')

  const old = await post({ jsonrpc: '2.0', id: 'a', method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  t.equal(old.json().result.protocolVersion, '2024-11-05', 'an older supported version is echoed')
  const future = await post({ jsonrpc: '2.0', id: 'b', method: 'initialize', params: { protocolVersion: '2099-01-01', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  t.equal(future.json().result.protocolVersion, '2025-11-25', 'an unknown version gets our latest')
  t.equal(future.json().id, 'b', 'string ids come back as strings')

  const again = await post({ jsonrpc: '2.0', id: 2, method: 'initialize', params: {} }, { 'mcp-session-id': sessionId })
  t.equal(again.status, 400, 'initialize inside a session is refused')
  t.equal(again.json().error.code, -32600)
})

test('requests need a known session', async (t) => {
  const { post, initialize, gateway } = await setup(t)
  const missing = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
  t.equal(missing.status, 400)
  t.equal(missing.json().error.code, -32000)
  t.match(missing.json().error.message, /Mcp-Session-Id header is required/)

  const unknown = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': 'no-such-session' })
  t.equal(unknown.status, 404)
  t.equal(unknown.json().error.code, -32001)
  t.match(unknown.json().error.message, /Session not found/)

  const { sessionId } = await initialize()
  const ping = await post({ jsonrpc: '2.0', id: 7, method: 'ping' }, { 'mcp-session-id': sessionId })
  t.same(ping.json(), { jsonrpc: '2.0', id: 7, result: {} })

  const deleted = await request(gateway.mcp, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } })
  await deleted.body.dump()
  t.equal(deleted.statusCode, 200, 'DELETE ends the session')
  const after = await post({ jsonrpc: '2.0', id: 8, method: 'ping' }, { 'mcp-session-id': sessionId })
  t.equal(after.status, 404, 'an ended session is 404')
  t.equal(gateway.app.mcpProxy.sessions.size, 0)
})

test('notifications and batches', async (t) => {
  const { post, initialize } = await setup(t)
  const { sessionId } = await initialize()
  const note = await post({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }, { 'mcp-session-id': sessionId })
  t.equal(note.status, 202)
  t.equal(note.text, '', 'no body for an accepted notification')

  const batch = await post([
    { jsonrpc: '2.0', id: 1, method: 'ping' },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fx__tool_00', arguments: { text: 'b' } } }
  ], { 'mcp-session-id': sessionId })
  t.equal(batch.status, 200)
  t.same(batch.json(), [
    { jsonrpc: '2.0', id: 1, result: {} },
    { jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'fx:tool_00:{"text":"b"}' }] } }
  ], 'a 2025-03-26 batch gets an array of answers')
})

test('JSON-RPC errors carry the spec codes and say what was wrong', async (t) => {
  const { post, initialize } = await setup(t)
  const { sessionId } = await initialize()
  const h = { 'mcp-session-id': sessionId }

  const unknownTool = await post({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'nope', arguments: {} } }, h)
  t.equal(unknownTool.status, 200)
  t.equal(unknownTool.json().error.code, -32602)
  t.match(unknownTool.json().error.message, /Unknown tool: nope/)

  const noName = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: {} }, h)
  t.equal(noName.json().error.code, -32602)

  const unknownMethod = await post({ jsonrpc: '2.0', id: 3, method: 'tools/destroy' }, h)
  t.equal(unknownMethod.json().error.code, -32601)
  t.match(unknownMethod.json().error.message, /tools\/destroy/)

  const badCursor = await post({ jsonrpc: '2.0', id: 4, method: 'tools/list', params: { cursor: 'bogus!' } }, h)
  t.equal(badCursor.json().error.code, -32602)
  t.match(badCursor.json().error.message, /Invalid cursor/)

  const unknownResource = await post({ jsonrpc: '2.0', id: 5, method: 'resources/read', params: { uri: 'nowhere://x' } }, h)
  t.equal(unknownResource.json().error.code, -32002)

  const unknownPrompt = await post({ jsonrpc: '2.0', id: 6, method: 'prompts/get', params: { name: 'nope' } }, h)
  t.equal(unknownPrompt.json().error.code, -32602)

  const parse = await post('{"jsonrpc": "2.0", "id": ', h)
  t.equal(parse.status, 400)
  t.equal(parse.json().error.code, -32700)
  t.equal(parse.json().id, null)

  const invalid = await post({ jsonrpc: '1.0', id: 9, method: 'ping' }, h)
  t.equal(invalid.status, 400)
  t.equal(invalid.json().error.code, -32600)
  t.match(invalid.json().error.message, /jsonrpc/)

  const media = await request(gatewayMcp, { method: 'POST', headers: { 'content-type': 'text/plain', ...h }, body: 'hi' })
  t.equal(media.statusCode, 415)
  t.equal((await media.body.json() as { error: { code: number } }).error.code, -32000)

  const put = await request(gatewayMcp, { method: 'PUT', headers: h, body: '{}' })
  t.equal(put.statusCode, 405)
  t.equal(put.headers.allow, 'GET, POST, DELETE')
  await put.body.dump()

  const notAcceptable = await post({ jsonrpc: '2.0', id: 10, method: 'ping' }, { ...h, accept: 'text/html' })
  t.equal(notAcceptable.status, 406)

  const version = await post({ jsonrpc: '2.0', id: 11, method: 'ping' }, { ...h, 'mcp-protocol-version': '1999-01-01' })
  t.equal(version.status, 400)
  t.match(version.json().error.message, /Unsupported protocol version: 1999-01-01/)
  const goodVersion = await post({ jsonrpc: '2.0', id: 12, method: 'ping' }, { ...h, 'mcp-protocol-version': '2025-06-18' })
  t.equal(goodVersion.status, 200)
})

test('a foreign Origin or a rebound Host is refused with 403', async (t) => {
  const { post, initialize } = await setup(t, { allowedOrigins: ['https://app.example.com'] })
  const { sessionId } = await initialize()
  const h = { 'mcp-session-id': sessionId }
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }

  const evil = await post(ping, { ...h, origin: 'http://evil.example.com' })
  t.equal(evil.status, 403)
  t.match(evil.json().error.message, /Origin "http:\/\/evil.example.com" is not allowed/)
  t.equal((await post(ping, { ...h, origin: 'https://app.example.com' })).status, 200, 'a listed origin passes')
  t.equal((await post(ping, h)).status, 200, 'no Origin (an SDK or script) passes')

  const rebound = await post(ping, { ...h, host: 'evil.example.com', origin: 'http://evil.example.com' })
  t.equal(rebound.status, 403, 'DNS rebinding: a foreign Host on a loopback connection')
  t.match(rebound.json().error.message, /Host "evil.example.com" is not allowed/)
})

test('pagination uses the gateway\'s own cursors', async (t) => {
  const { post, initialize } = await setup(t, { pageSize: 5 })
  const { sessionId } = await initialize()
  const names: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const res = await post({ jsonrpc: '2.0', id: pages, method: 'tools/list', params: cursor === undefined ? {} : { cursor } }, { 'mcp-session-id': sessionId })
    const result = res.json().result
    names.push(...result.tools.map((tool: { name: string }) => tool.name))
    cursor = result.nextCursor
    pages++
  } while (cursor !== undefined)
  t.equal(pages, 3, '13 tools in pages of 5')
  t.equal(names.length, 13)
  t.same(names, [...names].sort())
  const other = await post({ jsonrpc: '2.0', id: 1, method: 'prompts/list', params: { cursor: Buffer.from('tools\nfx__tool_04').toString('base64url') } }, { 'mcp-session-id': sessionId })
  t.equal(other.json().error.code, -32602, 'a tools cursor is not a prompts cursor')
})

test('a call with a progress token is answered as an SSE stream', async (t) => {
  const { post, initialize } = await setup(t)
  const { sessionId } = await initialize()
  const res = await post({
    jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'fx__slow', arguments: { ms: 20 }, _meta: { progressToken: 'p1' } }
  }, { 'mcp-session-id': sessionId })
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /text\/event-stream/)
  // Event numbers count the session's events (its GET stream's too, a list_changed say): the response's is later.
  const events = /^id: p1\.(\d+)\nretry: 1000\ndata: \n\nevent: message\nid: p1\.(\d+)\ndata: (.*)\n\n$/.exec(res.text)
  t.ok(events !== null && Number(events[2]) > Number(events[1]), `a priming event (an id, no data) for a 2025-11-25 client, then the response, each with an event id: ${JSON.stringify(res.text)}`)
  t.equal(events?.[3], '{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"done"}]}}')
  const channel = gatewayApp.mcpProxy.sessions.get(sessionId)?.channel as StreamableHttpChannel
  await waitFor('the delivered answer stream to be forgotten', () => channel.store.after('p1', 0).length === 0)
  t.pass('an answer stream delivered in full is not kept for replay')
})

test('the GET stream: one per session, and it carries list_changed', async (t) => {
  const { initialize, gateway, post } = await setup(t)
  const { sessionId } = await initialize()
  const seen = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': sessionId })
  t.ok(seen.json().result.tools.length > 0, 'the client has seen the tools')
  const first = await request(gateway.mcp, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } })
  t.equal(first.statusCode, 200)
  t.match(first.headers['content-type'], /text\/event-stream/)
  const second = await request(gateway.mcp, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } })
  t.equal(second.statusCode, 409)
  await second.body.dump()
  const wrongAccept = await request(gateway.mcp, { method: 'GET', headers: { accept: 'application/json', 'mcp-session-id': sessionId } })
  t.equal(wrongAccept.statusCode, 406)
  await wrongAccept.body.dump()

  const received = new Promise<string>((resolve) => {
    let text = ''
    first.body.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      if (text.includes('list_changed')) resolve(text)
    })
  })
  gateway.app.mcpRegistry.remove('fx')
  t.match(await received, /"method":"notifications\/tools\/list_changed"/, 'removing the upstream announces the change')
  first.body.destroy()
})

test('a task-augmented call is refused: the gateway does not advertise tasks', async (t) => {
  const { post, initialize } = await setup(t)
  const { res, sessionId } = await initialize()
  t.notOk('tasks' in res.json().result.capabilities, 'no tasks capability')
  const call = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fx__tool_00', arguments: {}, task: { ttl: 1000 } } }, { 'mcp-session-id': sessionId })
  t.equal(call.json().error.code, -32602)
  t.match(call.json().error.message, /does not support tasks/)
})
