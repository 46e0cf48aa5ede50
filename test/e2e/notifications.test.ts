import { test } from 'tap'
import { request } from 'undici'
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { startConformanceServer } from '../fixtures/conformance-server.js'

/**
 * Notifications through the gateway: resource updates only to the clients that subscribed, log messages filtered
 * by each client's level and named by service, and a client that lost a stream resuming it with Last-Event-ID.
 * The upstream is the conformance fixture (hand-written), which can send updates on demand.
 */

test('resource updates reach only the clients subscribed to them', async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [{ id: 'conf', url: upstream.url }] })
  const alice = await connectClient(t, gateway.mcp)
  const bob = await connectClient(t, gateway.mcp)
  t.same(alice.getServerCapabilities()?.resources, { subscribe: true, listChanged: true }, 'subscribe is advertised')
  const updates = { alice: [] as string[], bob: [] as string[] }
  alice.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => { updates.alice.push(n.params.uri) })
  bob.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => { updates.bob.push(n.params.uri) })
  await waitFor('both GET streams', () => [...gateway.app.mcpProxy.sessions.all()].every(s => s.channel.open))

  t.same(await alice.subscribeResource({ uri: 'test://watched-resource' }), {})
  await upstream.updateResource('test://watched-resource')
  await waitFor('alice\'s update', () => updates.alice.length === 1)
  t.same(updates.bob, [], 'bob did not subscribe and got nothing')

  t.same(await alice.unsubscribeResource({ uri: 'test://watched-resource' }), {})
  await bob.subscribeResource({ uri: 'test://watched-resource' })
  await upstream.updateResource('test://watched-resource')
  await waitFor('bob\'s update', () => updates.bob.length === 1)
  t.equal(updates.alice.length, 1, 'alice unsubscribed and got nothing more')

  t.same(await alice.subscribeResource({ uri: 'nowhere://x' }), {},
    'a URI no upstream lists goes to the only service that takes subscriptions (servers watch what they do not list)')
})

test('log messages follow each client\'s level and name their service', async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [{ id: 'conf', url: upstream.url }] })
  const quiet = await connectClient(t, gateway.mcp)
  const chatty = await connectClient(t, gateway.mcp)
  const heard = { quiet: [] as Array<Record<string, unknown>>, chatty: [] as Array<Record<string, unknown>> }
  quiet.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => { heard.quiet.push(n.params) })
  chatty.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => { heard.chatty.push(n.params) })
  await quiet.setLoggingLevel('error')
  await chatty.setLoggingLevel('debug')

  await Promise.all([
    quiet.callTool({ name: 'test_tool_with_logging', arguments: {} }),
    chatty.callTool({ name: 'test_tool_with_logging', arguments: {} })
  ])
  await waitFor('chatty\'s three messages', () => heard.chatty.length === 3)
  t.same(heard.quiet, [], 'info messages are below the error level quiet asked for')
  t.ok(heard.chatty.every(m => m.level === 'info' && typeof m.logger === 'string' && (m.logger as string).startsWith('conf')),
    'each message names the service it came from')
})

test('a client that lost its GET stream resumes it with Last-Event-ID and gets what it missed', async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, { admin: { apiKey: 'admin-key-for-tests-0123456789' }, servers: [{ id: 'conf', url: upstream.url }] })
  const init = await request(gateway.mcp, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  await init.body.dump()
  const sessionId = init.headers['mcp-session-id'] as string
  const headers = { accept: 'text/event-stream', 'mcp-session-id': sessionId }

  const first = await request(gateway.mcp, { method: 'GET', headers })
  let text = ''
  first.body.on('data', (chunk: Buffer) => { text += chunk.toString() })
  await waitFor('the priming event', () => /^id: (g\.\d+)\nretry: \d+\ndata: \n\n/.test(text))
  const lastEventId = (/^id: (g\.\d+)/.exec(text) as RegExpExecArray)[1] as string
  first.body.destroy()
  await waitFor('the gateway to see the stream close', () => !gateway.app.mcpProxy.sessions.get(sessionId)?.channel.open)

  // While the client is away, the catalog changes twice.
  gateway.app.mcpRegistry.update('conf', { url: upstream.url, tools: { deny: ['test_simple_text'] } })
  await waitFor('the first change to be announced', () => gateway.app.mcpProxy.catalog.tool('conf__test_simple_text') === undefined)

  const resumed = await request(gateway.mcp, { method: 'GET', headers: { ...headers, 'last-event-id': lastEventId } })
  t.equal(resumed.statusCode, 200)
  let replay = ''
  resumed.body.on('data', (chunk: Buffer) => { replay += chunk.toString() })
  await waitFor('the missed notification', () => replay.includes('notifications/tools/list_changed'))
  t.match(replay, /event: message\nid: g\.\d+\ndata: \{"jsonrpc":"2.0","method":"notifications\/tools\/list_changed"\}/,
    'the notification sent while the stream was gone is replayed with its id')
  resumed.body.destroy()

  const bogus = await request(gateway.mcp, { method: 'GET', headers: { ...headers, 'last-event-id': 'no-such-event' } })
  t.equal(bogus.statusCode, 400, 'an id the gateway never issued is refused')
  await bogus.body.dump()
})

test('a call whose answer stream broke is resumed: the rest of its events and its result', async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [{ id: 'conf', url: upstream.url }] })
  const post = (body: unknown, headers: Record<string, string> = {}) => request(gateway.mcp, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body)
  })
  const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  await init.body.dump()
  const sessionId = init.headers['mcp-session-id'] as string

  const call = await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: 'tok' } } }, { 'mcp-session-id': sessionId })
  t.match(call.headers['content-type'], /text\/event-stream/)
  let seen = ''
  call.body.on('data', (chunk: Buffer) => { seen += chunk.toString() })
  await waitFor('the priming event of the answer stream', () => /^id: (p\d+\.\d+)\n/.test(seen))
  const primed = (/^id: (p\d+\.\d+)/.exec(seen) as RegExpExecArray)[1] as string
  call.body.destroy()

  const resumed = await request(gateway.mcp, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': primed } })
  t.equal(resumed.statusCode, 200)
  const replay = await resumed.body.text()
  const messages = [...replay.matchAll(/^data: (.+)$/gm)].map(m => JSON.parse(m[1] as string))
  const progress = messages.filter(m => m.method === 'notifications/progress').map(m => m.params)
  t.ok(progress.some(p => p.progress === 100 && p.progressToken === 'tok'), 'progress it missed, under the client\'s token')
  t.match(messages.at(-1), { id: 7, result: { content: [{ type: 'text' }] } }, 'and the result, after which the stream ends')
})
