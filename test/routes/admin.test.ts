import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Test, test } from 'tap'
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * The admin API: servers registered, replaced and removed at run time join and leave the catalog without a restart,
 * clients are told through list_changed, and the routes exist only when an admin key is configured.
 */

const KEY = 'admin-key-for-tests-0123456789'

async function admin (t: Test, extra: Record<string, unknown> = {}) {
  const alpha = await startHttpFixture(t, { name: 'alpha', tools: [{ name: 'a1' }] })
  const beta = await startHttpFixture(t, { name: 'beta', tools: [{ name: 'b1' }, { name: 'b2' }] })
  const gateway = await startGateway(t, { admin: { apiKey: KEY }, servers: [{ id: 'alpha', url: alpha.url, headers: { authorization: 'Bearer upstream-secret' } }], ...extra })
  const call = async (method: string, path: string, body?: unknown, key: string | null = KEY) => {
    const headers: Record<string, string> = {}
    if (key !== null) headers.authorization = `Bearer ${key}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(gateway.base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
    const text = await res.text()
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
  }
  return { alpha, beta, gateway, call }
}

test('without an admin key the admin routes do not exist', async (t) => {
  const gateway = await startGateway(t, {})
  const res = await fetch(gateway.base + '/admin/servers', { headers: { authorization: `Bearer ${KEY}` } })
  t.equal(res.status, 404)
})

test('every admin request needs the key, compared in constant time', async (t) => {
  const { call, gateway } = await admin(t)
  const none = await call('GET', '/admin/servers', undefined, null)
  t.equal(none.status, 401)
  t.equal(none.body.code, 'MCPGW_ERR_ADMIN_UNAUTHORIZED')
  t.equal((await call('GET', '/admin/servers', undefined, 'wrong-key-wrong-key')).status, 401)
  t.equal((await call('GET', '/admin/servers', undefined, KEY.slice(0, -1))).status, 401, 'a prefix of the key is not the key')
  const byHeader = await fetch(gateway.base + '/admin/servers', { headers: { 'x-api-key': KEY } })
  t.equal(byHeader.status, 200, 'x-api-key works too')
  const unauthorizedWrite = await call('POST', '/admin/servers/register', { id: 'x', url: 'http://127.0.0.1:1/mcp' }, null)
  t.equal(unauthorizedWrite.status, 401, 'writes are refused before their body is looked at')
})

test('register, replace and remove servers at run time; clients are told', async (t) => {
  const { call, beta, alpha, gateway } = await admin(t)
  const client = await connectClient(t, gateway.mcp)
  let changes = 0
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => { changes++ })
  // The SDK client opens its GET stream right after initializing; wait for it so no notification is missed.
  await waitFor('the client\'s GET stream', () => [...gateway.app.mcpProxy.sessions.all()].every(s => s.channel.open))
  const names = async () => (await client.listTools()).tools.map(tool => tool.name)
  t.same(await names(), ['alpha__a1'])

  const listed = await call('GET', '/admin/servers')
  t.equal(listed.status, 200)
  t.equal(listed.body.servers[0].id, 'alpha')
  t.equal(listed.body.servers[0].state, 'up')
  t.same(listed.body.servers[0].definition.headers, { authorization: '[redacted]' }, 'credentials are never shown')

  const registered = await call('POST', '/admin/servers/register', { id: 'beta', url: beta.url, tags: ['new'] })
  t.equal(registered.status, 201)
  t.equal(registered.body.id, 'beta')
  await waitFor('beta to join the catalog', async () => (await names()).includes('beta__b1'))
  t.same(await names(), ['alpha__a1', 'beta__b1', 'beta__b2'])
  t.same(await client.callTool({ name: 'beta__b2', arguments: {} }), { content: [{ type: 'text', text: 'beta:b2:{}' }] })
  await waitFor('list_changed for the registration', () => changes >= 1)

  const duplicate = await call('POST', '/admin/servers/register', { id: 'beta', url: beta.url })
  t.equal(duplicate.status, 409)
  t.match(duplicate.body.message, /already registered.*PUT \/admin\/servers\/beta/)
  const invalid = await call('POST', '/admin/servers/register', { id: 'gamma', url: beta.url, autoApprove: true })
  t.equal(invalid.status, 400)
  t.match(invalid.body.message, /autoApprove/, 'an unknown key is named')
  const neither = await call('POST', '/admin/servers/register', { id: 'gamma' })
  t.equal(neither.status, 400)
  t.match(neither.body.message, /needs url .* or command/)

  const replaced = await call('PUT', '/admin/servers/beta', { url: alpha.url })
  t.equal(replaced.status, 200)
  await waitFor('beta to serve alpha\'s tools', async () => (await names()).includes('beta__a1'))
  t.notOk((await names()).includes('beta__b1'))
  t.equal((await call('PUT', '/admin/servers/nobody', { url: alpha.url })).status, 404)
  t.equal((await call('PUT', '/admin/servers/beta', { id: 'other', url: alpha.url })).status, 400, 'the body id must match the path')

  const removed = await call('DELETE', '/admin/servers/beta')
  t.equal(removed.status, 200)
  t.equal(removed.body.state, 'removed')
  await waitFor('beta to leave the catalog', async () => !(await names()).some(n => n.startsWith('beta__')))
  t.equal((await call('DELETE', '/admin/servers/beta')).status, 404)
  await waitFor('list_changed for the later changes', () => changes >= 3)
})

test('runtime changes persist to the registry file and survive a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-registry-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const registryFile = join(dir, 'registry.json')
  const first = await admin(t, { registryFile })
  t.equal((await first.call('POST', '/admin/servers/register', { id: 'beta', url: first.beta.url })).status, 201)
  t.equal((await first.call('DELETE', '/admin/servers/alpha')).status, 200)
  await first.gateway.app.mcpRegistry.flush()
  const saved = JSON.parse(await readFile(registryFile, 'utf8'))
  t.equal(saved.servers.alpha, null, 'a removal is remembered')
  t.equal(saved.servers.beta.url, first.beta.url)

  const second = await startGateway(t, { admin: { apiKey: KEY }, registryFile, servers: [{ id: 'alpha', url: first.alpha.url }] })
  t.same(second.app.mcpRegistry.list().map(s => s.id), ['beta'], 'the overlay applies on top of the configured servers')
  await waitFor('beta to come up after the restart', () => second.app.mcpProxy.catalog.tool('beta__b1') !== undefined)
})

test('PATCH switches a server off, on, or drains it; a drain keeps its connection', async (t) => {
  const { call, gateway } = await admin(t)
  const connection = gateway.app.mcpProxy.connections.get('alpha')
  const drained = await call('PATCH', '/admin/servers/alpha', { weight: 0 })
  t.equal(drained.status, 200)
  t.match(drained.body, { id: 'alpha', state: 'up', definition: { weight: 0, headers: { authorization: '[redacted]' } } })
  t.equal(gateway.app.mcpProxy.connections.get('alpha'), connection, 'the same connection: nothing reconnected')
  t.match((await call('PATCH', '/admin/servers/alpha', { weight: null })).body, { definition: { weight: 1 } }, 'undrained: the weight its definition gives')
  t.equal((await call('PATCH', '/admin/servers/alpha', { weight: 0 })).status, 200)
  const off = await call('PATCH', '/admin/servers/alpha', { enabled: false })
  t.match(off.body, { definition: { enabled: false } })
  await waitFor('alpha disabled', () => gateway.app.mcpProxy.connections.get('alpha')?.state === 'disabled')
  await call('PATCH', '/admin/servers/alpha', { enabled: true, weight: 1 })
  await waitFor('alpha back', () => gateway.app.mcpProxy.connections.get('alpha')?.state === 'up')
  // Off and on again without waiting: the last switch wins, one live connection.
  const racing = await Promise.all([call('PATCH', '/admin/servers/alpha', { enabled: false }), call('PATCH', '/admin/servers/alpha', { enabled: true })])
  t.same(racing.map(r => r.status), [200, 200])
  await waitFor('alpha up after off-and-on', () => gateway.app.mcpProxy.connections.get('alpha')?.state === 'up')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(gateway.app.mcpProxy.connections.get('alpha')?.state, 'up', 'and it stays up (the disabled definition did not connect over it)')
  t.equal(gateway.app.mcpRegistry.get('alpha')?.enabled, true)
  t.equal((await call('PATCH', '/admin/servers/alpha', {})).status, 400, 'an empty switch is refused')
  t.equal((await call('PATCH', '/admin/servers/alpha', { weight: -1 })).status, 400)
  t.equal((await call('PATCH', '/admin/servers/nope', { enabled: true })).status, 404)
  t.equal((await call('PATCH', '/admin/servers/alpha', { enabled: true }, null)).status, 401)
})

test('a drain keeps the upstream\'s concurrency gate: calls running on it still count', async (t) => {
  const slow = await startHttpFixture(t, { name: 'slow', tools: [{ name: 'wait', handler: async () => { await new Promise(resolve => setTimeout(resolve, 400)); return { content: [] } } }] })
  const gateway = await startGateway(t, { admin: { apiKey: KEY }, servers: [{ id: 'slow', url: slow.url, maxConcurrent: 1, queue: { size: 10, timeoutMs: 5000 } }] })
  const first = gateway.app.mcpProxy.callTool('slow__wait', {})
  await waitFor('the first call running', () => gateway.app.mcpProxy.upstreamHealth()[0]?.queue.running === 1)
  const patched = await fetch(gateway.base + '/admin/servers/slow', { method: 'PATCH', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ weight: 2 }) })
  t.equal(patched.status, 200)
  const second = gateway.app.mcpProxy.callTool('slow__wait', {})
  await waitFor('the second call queued', () => gateway.app.mcpProxy.upstreamHealth()[0]?.queue.queued === 1)
  t.match(gateway.app.mcpProxy.upstreamHealth()[0]?.queue, { running: 1, queued: 1 }, 'maxConcurrent 1 still holds')
  await Promise.all([first, second])
  t.match(gateway.app.mcpProxy.upstreamHealth()[0]?.queue, { running: 0, queued: 0 })
})

test('the dashboard feed does not keep app.close() waiting', async (t) => {
  const gateway = await startGateway(t, { dashboard: { intervalMs: 500 } })
  const controller = new AbortController()
  const res = await fetch(gateway.base + '/dashboard/feed', { signal: controller.signal })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/event-stream/)
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const first = new TextDecoder().decode((await reader.read()).value)
  t.match(first, /^event: stats\ndata: \{"at":/)
  const started = Date.now()
  await gateway.app.close()
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms with a viewer connected`)
  controller.abort()
})
