import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { test, type Test } from 'tap'
import { startConformanceServer } from '../fixtures/conformance-server.js'
import { type FixtureTool, startHttpFixture } from '../fixtures/mcp-server.js'
import { redisServer, startRedis } from '../fixtures/redis-server.js'
import { connectClient, freePort, type Gateway, startGateway, waitFor } from '../helper.js'

const STDIO_SERVER = fileURLToPath(new URL('../fixtures/stdio-server.mjs', import.meta.url))

/**
 * The result cache's layers against real peers: two gateways sharing results through a real redis-server (one's
 * miss is the other's hit), and still answering — from their upstream — once Redis is gone; a directory that keeps
 * results across a restart within its byte bound; resource reads cached and made stale by the upstream's
 * resources/updated, on every instance sharing Redis; errors kept in no layer.
 */

async function directory (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-cache-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A fixture whose tools count their calls: `search` (read-only), `flaky` (an isError result), `broken` (a JSON-RPC error). */
function countingTools (counts: Record<string, number>, size = 0): FixtureTool[] {
  const count = (name: string) => { counts[name] = (counts[name] ?? 0) + 1; return counts[name] }
  return [
    { name: 'search', annotations: { readOnlyHint: true }, handler: (args) => ({ content: [{ type: 'text', text: `search ${JSON.stringify(args)} #${count('search')} ${'x'.repeat(size)}`.trim() }] }) },
    { name: 'flaky', annotations: { readOnlyHint: true }, handler: () => ({ content: [{ type: 'text', text: `flaky #${count('flaky')}` }], isError: true }) },
    { name: 'broken', annotations: { readOnlyHint: true }, handler: () => { count('broken'); throw new McpError(-32603, 'broken upstream') } }
  ]
}

const text = async (gateway: Gateway, name: string, args: Record<string, unknown> = {}) => {
  const result = await gateway.app.mcpProxy.callTool(name, args) as { content: Array<{ text: string }> }
  return result.content[0]?.text.replace(/ x+$/, '')
}

const metric = async (gateway: Gateway, pattern: RegExp) => pattern.exec(await (await fetch(gateway.base + '/metrics')).text())?.[1]

test('two gateways share results through Redis; without Redis they answer from their upstream', async (t) => {
  const binary = redisServer()
  const redisPort = await freePort()
  const redis = await startRedis(t, binary, redisPort)
  const counts: Record<string, number> = {}
  const fixture = await startHttpFixture(t, { name: 'kb', tools: countingTools(counts) })
  const dir = await directory(t)
  const config = (name: string) => ({
    redis: { url: `redis://127.0.0.1:${redisPort}`, keyPrefix: 'layers:', commandTimeout: 300 },
    cache: { redis: true, dir: join(dir, name), tools: [{ pattern: 'kb__*', ttlMs: 60_000 }] },
    servers: [{ id: 'kb', url: fixture.url }]
  })
  const [a, b] = await Promise.all([startGateway(t, config('a')), startGateway(t, config('b'))])
  for (const gateway of [a, b]) await waitFor('the Redis layer ready', () => gateway.app.mcpProxy.cache?.status().redis?.state === 'ready')

  t.equal(await text(a, 'kb__search', { q: 'shared' }), 'search {"q":"shared"} #1', 'A misses: the upstream answers')
  t.equal(await text(b, 'kb__search', { q: 'shared' }), 'search {"q":"shared"} #1', 'B hits what A stored in Redis')
  t.equal(await text(b, 'kb__search', { q: 'shared' }), 'search {"q":"shared"} #1', 'and then its own memory')
  t.equal(counts.search, 1, 'the upstream was asked once')
  t.match(b.app.mcpProxy.cache?.figures().layers, { memory: { hits: 1, misses: 1 }, redis: { hits: 1, misses: 0, state: 'ready' }, file: { hits: 0 } })
  t.equal(await metric(b, /mcp_gateway_cache_layer_lookups_total\{layer="redis",outcome="hit"\} (\d+)/), '1')
  t.equal(await metric(b, /mcp_gateway_cache_lookups_total\{outcome="hit"\} (\d+)/), '2', 'the lookups of old count calls, whichever layer answered')
  const stats = await (await fetch(b.base + '/stats')).json() as { totals: { cache: unknown } }
  t.match(stats.totals.cache, { hits: 2, misses: 0, hitRate: 1, layers: { redis: { hits: 1, state: 'ready' }, file: { misses: 0 } } })

  // Errors: in no layer, on no instance.
  t.equal(await text(a, 'kb__flaky'), 'flaky #1')
  t.equal(await text(b, 'kb__flaky'), 'flaky #2', 'an isError result is stored nowhere')
  await t.rejects(a.app.mcpProxy.callTool('kb__broken', {}), /broken upstream/)
  await t.rejects(b.app.mcpProxy.callTool('kb__broken', {}), /broken upstream/)
  t.equal(counts.broken, 2, 'nor a JSON-RPC error')
  const direct = new Redis(redisPort, '127.0.0.1')
  t.teardown(() => direct.disconnect())
  t.equal((await direct.keys('layers:cache:*')).length, 1, 'Redis holds the one good result')
  await a.app.mcpProxy.cache?.close()
  t.equal((await readdir(join(dir, 'a'))).length, 1, 'so does A\'s directory')

  await new Promise<void>(resolve => { redis.once('exit', () => resolve()); redis.kill('SIGKILL') })
  t.equal(await text(a, 'kb__search', { q: 'later' }), 'search {"q":"later"} #2', 'Redis gone: A answers from its upstream')
  t.equal(await text(b, 'kb__search', { q: 'later' }), 'search {"q":"later"} #3', 'so does B: nothing shared, nothing failed')
  t.equal(await text(b, 'kb__search', { q: 'shared' }), 'search {"q":"shared"} #1', 'memory still serves what it holds')
  const status = await (await fetch(b.base + '/status')).json() as { cache: unknown }
  t.match(status.cache, { layers: ['memory', 'redis', 'file'], redis: { state: 'unavailable', reason: String, pendingInvalidations: 0 } })
})

test('the file layer keeps results across a restart, within maxDirBytes', async (t) => {
  const counts: Record<string, number> = {}
  const fixture = await startHttpFixture(t, { name: 'kb', tools: countingTools(counts, 15_000) })
  const dir = await directory(t)
  const config = { cache: { dir, maxDirBytes: 65_536, maxEntryBytes: 20_000, tools: [{ pattern: 'kb__*', ttlMs: 600_000 }] }, servers: [{ id: 'kb', url: fixture.url }] }
  const first = await startGateway(t, config)
  for (let i = 1; i <= 6; i++) {
    t.equal(await text(first, 'kb__search', { q: i }), `search {"q":${i}} #${i}`)
    // File times tick coarsely: the restarted layer orders what it finds by them.
    await new Promise(resolve => setTimeout(resolve, 15))
  }
  await first.app.close()
  const sizes = await Promise.all((await readdir(dir)).map(async name => (await stat(join(dir, name))).size))
  t.equal(sizes.length, 4, 'six results of 15 kB: the four newest fit in 64 kB')
  t.ok(sizes.reduce((a, b) => a + b, 0) <= 65_536, 'within maxDirBytes')

  const second = await startGateway(t, config)
  t.equal(await text(second, 'kb__search', { q: 6 }), 'search {"q":6} #6', 'after the restart: served from the directory')
  t.equal(await text(second, 'kb__search', { q: 3 }), 'search {"q":3} #3')
  t.equal(await text(second, 'kb__search', { q: 1 }), 'search {"q":1} #7', 'the oldest was evicted: asked again')
  t.match(second.app.mcpProxy.cache?.figures().layers.file, { hits: 2, misses: 1, entries: 4 })
  t.equal(await metric(second, /mcp_gateway_cache_layer_bytes\{layer="file"\} (\d+)/), String(second.app.mcpProxy.cache?.figures().layers.file?.bytes))
})

test('resource reads are cached, and stale once the upstream says the resource was updated', async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [{ id: 'conf', url: upstream.url, cache: { ttlMs: 60_000, resources: true } }] })
  const reader = await connectClient(t, gateway.mcp)
  const watcher = await connectClient(t, gateway.mcp)
  const read = async (uri = 'test://watched-resource') => ((await reader.readResource({ uri })).contents[0] as { text: string }).text
  const first = await read()
  await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(await read(), first, 'read again: from the cache (the content has the time it was read)')
  const updates: string[] = []
  watcher.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => { updates.push(n.params.uri) })
  await waitFor('the watcher\'s stream', () => [...gateway.app.mcpProxy.sessions.all()].every(s => s.channel.open))
  await watcher.subscribeResource({ uri: 'test://watched-resource' })
  await upstream.updateResource('test://watched-resource')
  await waitFor('the update', () => updates.length === 1)
  const fresh = await read()
  t.not(fresh, first, 'updated upstream: read there again')
  t.equal(await read(), fresh, 'and cached again')
  t.equal(await read('test://static-text'), 'This is the content of the static text resource.')
  await t.rejects(reader.readResource({ uri: 'test://nowhere' }), /Resource not found/)
  t.match(gateway.app.mcpProxy.cache?.figures(), { hits: 2, misses: 4 }, 'the failed read was looked up, and stored nowhere')
  await t.rejects(reader.readResource({ uri: 'test://nowhere' }), /Resource not found/)
  t.match(gateway.app.mcpProxy.cache?.figures(), { hits: 2, misses: 5 })
})

test('with Redis, an update heard by one gateway makes the resource stale on the other too', async (t) => {
  const redisPort = await freePort()
  await startRedis(t, redisServer(), redisPort)
  const upstream = await startConformanceServer(t)
  const config = {
    prefixMode: 'never',
    redis: { url: `redis://127.0.0.1:${redisPort}`, keyPrefix: 'resources:' },
    cache: { redis: true },
    servers: [{ id: 'conf', url: upstream.url, cache: { ttlMs: 60_000, resources: true } }]
  }
  const [a, b] = await Promise.all([startGateway(t, config), startGateway(t, config)])
  for (const gateway of [a, b]) await waitFor('the Redis layer ready', () => gateway.app.mcpProxy.cache?.status().redis?.state === 'ready')
  const read = async (gateway: Gateway) => ((await gateway.app.mcpProxy.readResource('test://watched-resource')) as { contents: Array<{ text: string }> }).contents[0]?.text
  const first = await read(a)
  t.equal(await read(b), first, 'B reads what A stored')
  const watcher = await connectClient(t, a.mcp)
  const updates: string[] = []
  watcher.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => { updates.push(n.params.uri) })
  await waitFor('the watcher\'s stream', () => [...a.app.mcpProxy.sessions.all()].every(s => s.channel.open))
  await watcher.subscribeResource({ uri: 'test://watched-resource' })
  await new Promise(resolve => setTimeout(resolve, 5))
  await upstream.updateResource('test://watched-resource')
  await waitFor('the update', () => updates.length === 1)
  await waitFor('the invalidation in Redis', () => a.app.mcpProxy.cache?.status().redis?.pendingInvalidations === 0)
  const fresh = await waitFor('B to read it again upstream', async () => { const r = await read(b); return r !== first ? r : undefined })
  t.not(fresh, first, 'B heard nothing itself, and still does not serve the old content')
  t.equal(await read(a), fresh, 'A reads what B stored since')
})

test('resource reads are stale once the upstream says its resource list changed', async (t) => {
  const gateway = await startGateway(t, {
    prefixMode: 'never',
    servers: [{ id: 'fx', command: process.execPath, args: [STDIO_SERVER, '--resources'], cache: { ttlMs: 60_000, resources: true } }]
  })
  const read = async () => ((await gateway.app.mcpProxy.readResource('fixture://reads')) as { contents: Array<{ text: string }> }).contents[0]?.text
  t.equal(await read(), 'read #1')
  t.equal(await read(), 'read #1', 'cached')
  await gateway.app.mcpProxy.callTool('change_resources', {})
  t.equal(await waitFor('a read after the list_changed', async () => { const text = await read(); return text === 'read #1' ? undefined : text }), 'read #2',
    'the list changed: read upstream again')
  t.equal(await read(), 'read #2', 'and cached again')
})
