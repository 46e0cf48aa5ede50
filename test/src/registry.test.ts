import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../src/config/normalize.js'
import type { UpstreamDefinition } from '../../src/config/types.js'
import { type Logger, silentLogger } from '../../src/logger.js'
import { Registry, type RegistryChange } from '../../src/registry.js'

type Test = { teardown (fn: () => unknown): void }

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-registry-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const configured = (id: string, extra: Record<string, unknown> = {}): UpstreamDefinition =>
  normalizeServer({ id, url: `http://127.0.0.1:1/${id}`, ...extra }, DEFAULT_UPSTREAM)

function registry (servers: UpstreamDefinition[] = [], file: string | null = null, log: Logger = silentLogger) {
  const r = new Registry(servers, { defaults: DEFAULT_UPSTREAM, file, log })
  const changes: RegistryChange[] = []
  r.onChange(change => changes.push(change))
  return { r, changes }
}

test('the configured servers are listed and grouped into services in registration order', async (t) => {
  const { r } = registry([
    configured('gh-1', { service: 'github' }),
    configured('fs'),
    configured('gh-2', { service: 'github' })
  ])
  t.same(r.list().map(s => s.id), ['gh-1', 'fs', 'gh-2'])
  t.same(r.services(), ['github', 'fs'])
  t.same(r.replicas('github').map(s => s.id), ['gh-1', 'gh-2'])
  t.same(r.replicas('fs').map(s => s.id), ['fs'])
  t.same(r.replicas('nope'), [])
  t.equal(r.get('fs')?.url, 'http://127.0.0.1:1/fs')
  t.equal(r.get('nope'), undefined)
})

test('add validates, applies defaults, announces the change and updates services', async (t) => {
  const { r, changes } = registry([configured('a')])
  const added = r.add({ id: 'b', url: 'http://127.0.0.1:1/b', service: 'a' })
  t.same(added, {
    id: 'b',
    transport: 'streamable-http',
    url: 'http://127.0.0.1:1/b',
    args: [],
    env: {},
    service: 'a',
    weight: 1,
    maxConnections: DEFAULT_UPSTREAM.maxConnections,
    timeout: DEFAULT_UPSTREAM.timeout,
    headers: {},
    enabled: true,
    tags: [],
    sessionMode: 'auto',
    forwardIdentity: false,
    maxSessions: DEFAULT_UPSTREAM.maxSessions,
    maxConcurrent: 0,
    queue: { size: 100, timeoutMs: 5000 },
    healthCheck: { intervalMs: 30_000, timeoutMs: 5000, unhealthyThreshold: 2, healthyThreshold: 1, retryIntervalMs: 2000 }
  })
  t.same(changes, [{ type: 'added', server: added }])
  t.equal(r.get('b'), added)
  t.same(r.replicas('a').map(s => s.id), ['a', 'b'])

  const stdio = r.add({ id: 'local', command: 'node', args: ['server.js'] })
  t.equal(stdio.transport, 'stdio', 'the transport is inferred from command')
  t.same(r.services(), ['a', 'local'])
})

test('add refuses an id that is already registered with MCPGW_ERR_SERVER_EXISTS', async (t) => {
  const { r, changes } = registry([configured('a')])
  t.throws(() => r.add({ id: 'a', url: 'http://127.0.0.1:1/other' }), {
    code: 'MCPGW_ERR_SERVER_EXISTS',
    statusCode: 409,
    message: 'Server a is already registered (use PUT /admin/servers/a to change it)'
  })
  t.equal(r.get('a')?.url, 'http://127.0.0.1:1/a', 'the registered server is unchanged')
  t.same(changes, [])
})

test('add refuses invalid definitions with MCPGW_ERR_SERVER_INVALID naming the problem', async (t) => {
  const { r, changes } = registry()
  const cases: Array<[unknown, string | RegExp]> = [
    [{ id: 'a', url: 'http://127.0.0.1:1/', autoApprove: true }, 'server: unknown key "autoApprove"'],
    [{ url: 'http://127.0.0.1:1/' }, /^Invalid server definition: server: .*\bid\b/],
    [null, 'server: must be object'],
    ['a string', 'server: must be object'],
    [{ id: 'a' }, 'server: needs url (an HTTP server) or command (a stdio server)'],
    [{ id: 'a', url: 'http://x/', command: 'node' }, 'server: set either url (an HTTP server) or command (a stdio server), not both'],
    [{ id: '-a', url: 'http://x/' }, 'server.id: must match pattern "^[A-Za-z0-9][A-Za-z0-9_.-]*$"'],
    [{ id: 'a', url: 'ftp://x/' }, 'server.url: must match pattern "^(https?|wss?)://"'],
    [{ id: 'a', url: 'http://u:p@x/' }, 'server.url: put credentials in headers, not in the URL'],
    [{ id: 'a', command: 'node', headers: { a: 'b' } }, 'server.headers: only HTTP upstreams send headers; use env for a stdio server'],
    [{ id: 'a', url: 'http://x/', weight: -1 }, 'server.weight: must be >= 0'],
    [{ id: 'a', url: 'http://x/', transport: 'grpc' }, 'server.transport: must be one of "streamable-http", "sse", "websocket", "stdio"']
  ]
  for (const [input, problem] of cases) {
    const message = typeof problem === 'string' ? `Invalid server definition: ${problem}` : problem
    t.throws(() => r.add(input), { code: 'MCPGW_ERR_SERVER_INVALID', statusCode: 400, message }, JSON.stringify(input))
  }
  t.same(r.list(), [])
  t.same(changes, [])
})

test('add refuses unknown keys even when there are many of them', async (t) => {
  const { r } = registry()
  const junk = Object.fromEntries('abcdefgh'.split('').map(k => [k, 1]))
  t.throws(() => r.add({ id: 'a', url: 'http://127.0.0.1:1/', ...junk }), { code: 'MCPGW_ERR_SERVER_INVALID', message: /server: unknown key "h"/ },
    'eight unknown keys')
})

test('a replica that disagrees with its service is refused', async (t) => {
  const { r } = registry([configured('a-1', { service: 'a', stateless: true, tools: { deny: ['x'] } })])
  t.throws(() => r.add({ id: 'a-2', service: 'a', url: 'http://127.0.0.1:1/' }), {
    code: 'MCPGW_ERR_SERVER_INVALID',
    message: 'Invalid server definition: server "a-2": sessionMode differs from "a-1", another replica of service "a"; replicas must agree'
  })
  t.throws(() => r.add({ id: 'a-2', service: 'a', stateless: true, tools: { deny: ['y'] }, url: 'http://127.0.0.1:1/' }), {
    code: 'MCPGW_ERR_SERVER_INVALID',
    message: /server "a-2": its tools options differ from those of "a-1", another replica of service "a"/
  })
  const ok = r.add({ id: 'a-2', service: 'a', stateless: true, url: 'http://127.0.0.1:1/' })
  t.equal(ok.tools, undefined, 'tools may be set on one replica only')
  t.same(r.serviceOptions('a'), { sessionMode: 'shared', tools: { deny: ['x'] }, prompts: undefined })
})

test('serviceOptions reads service-wide options from whichever replica sets them', async (t) => {
  const { r } = registry([
    configured('s-1', { service: 's' }),
    configured('s-2', { service: 's', prompts: { allow: ['p*'] } })
  ])
  t.same(r.serviceOptions('s'), { sessionMode: 'auto', tools: undefined, prompts: { allow: ['p*'] } })
  t.same(r.serviceOptions('nope'), { sessionMode: 'auto', tools: undefined, prompts: undefined })
})

test('update replaces a definition by id, keeps its place, and announces the previous one', async (t) => {
  const { r, changes } = registry([configured('a'), configured('b')])
  const previous = r.get('a')
  const updated = r.update('a', { id: 'ignored', url: 'http://127.0.0.1:2/a', weight: 5 })
  t.equal(updated.id, 'a', 'the id comes from the path, not the body')
  t.equal(updated.weight, 5)
  t.equal(r.get('ignored'), undefined)
  t.same(changes, [{ type: 'updated', server: updated, previous }])
  t.same(r.list().map(s => s.id), ['a', 'b'])
  t.equal(r.get('a'), updated)
})

test('update can move a server to another service', async (t) => {
  const { r } = registry([configured('a'), configured('b')])
  r.update('b', { url: 'http://127.0.0.1:1/b', service: 'a' })
  t.same(r.services(), ['a'])
  t.same(r.replicas('a').map(s => s.id), ['a', 'b'])
})

test('update of an unknown id is MCPGW_ERR_SERVER_NOT_FOUND, an invalid one MCPGW_ERR_SERVER_INVALID', async (t) => {
  const { r, changes } = registry([configured('a')])
  t.throws(() => r.update('zz', { url: 'http://127.0.0.1:1/' }), {
    code: 'MCPGW_ERR_SERVER_NOT_FOUND',
    statusCode: 404,
    message: 'Server zz is not registered'
  })
  t.throws(() => r.update('a', { url: 'ftp://x' }), {
    code: 'MCPGW_ERR_SERVER_INVALID',
    message: 'Invalid server definition: server.url: must match pattern "^(https?|wss?)://"'
  })
  t.throws(() => r.update('a', { url: 'http://127.0.0.1:1/', colour: 'red' }), {
    code: 'MCPGW_ERR_SERVER_INVALID',
    message: 'Invalid server definition: server: unknown key "colour"'
  })
  t.equal(r.get('a')?.url, 'http://127.0.0.1:1/a')
  t.same(changes, [])
})

test('update checks the other replicas of its service, not itself', async (t) => {
  const { r } = registry([configured('a-1', { service: 'a' }), configured('a-2', { service: 'a' })])
  t.equal(r.update('a-1', { service: 'a', url: 'http://127.0.0.1:1/', tools: { deny: ['x'] } }).id, 'a-1')
  t.throws(() => r.update('a-1', { service: 'a', url: 'http://127.0.0.1:1/', stateless: true }), {
    code: 'MCPGW_ERR_SERVER_INVALID',
    message: /server "a-1": sessionMode differs from "a-2"/
  })
  const solo = registry([configured('s')])
  t.equal(solo.r.update('s', { url: 'http://127.0.0.1:1/', stateless: true }).sessionMode, 'shared', 'a lone replica may change anything')
})

test('remove deletes by id and announces it; unknown ids are MCPGW_ERR_SERVER_NOT_FOUND', async (t) => {
  const { r, changes } = registry([configured('a'), configured('b', { service: 'a' })])
  const removed = r.remove('a')
  t.equal(removed.id, 'a')
  t.same(changes, [{ type: 'removed', server: removed }])
  t.equal(r.get('a'), undefined)
  t.same(r.replicas('a').map(s => s.id), ['b'])
  r.remove('b')
  t.same(r.services(), [])
  t.throws(() => r.remove('a'), { code: 'MCPGW_ERR_SERVER_NOT_FOUND', statusCode: 404, message: 'Server a is not registered' })
  t.equal(changes.length, 2)
})

test('listeners see the registry already changed, and can unsubscribe', async (t) => {
  const r = new Registry([], { defaults: DEFAULT_UPSTREAM, file: null, log: silentLogger })
  const seen: string[][] = []
  const stop = r.onChange(() => seen.push(r.replicas('a').map(s => s.id)))
  r.add({ id: 'a', url: 'http://127.0.0.1:1/' })
  t.same(seen, [['a']])
  stop()
  r.remove('a')
  t.equal(seen.length, 1)
})

test('without a file, load and flush do nothing', async (t) => {
  const { r } = registry([configured('a')])
  await r.load()
  r.add({ id: 'b', url: 'http://127.0.0.1:1/' })
  await r.flush()
  t.same(r.list().map(s => s.id), ['a', 'b'])
})

test('a missing registry file loads as an empty overlay', async (t) => {
  const dir = await tempDir(t)
  const { r } = registry([configured('a')], join(dir, 'registry.json'))
  await r.load()
  t.same(r.list().map(s => s.id), ['a'])
})

test('changes are persisted atomically as an overlay of ids to definitions or null', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'nested', 'registry.json')
  const { r } = registry([configured('keep'), configured('gone'), configured('swap')], file)
  r.add({ id: 'new', url: 'http://127.0.0.1:1/new' })
  r.update('swap', { url: 'http://127.0.0.1:2/swap', weight: 3 })
  r.remove('gone')
  await r.flush()

  const overlay = JSON.parse(await readFile(file, 'utf8'))
  t.strictSame(overlay, {
    servers: {
      new: { id: 'new', url: 'http://127.0.0.1:1/new' },
      swap: { url: 'http://127.0.0.1:2/swap', weight: 3, id: 'swap' },
      gone: null
    },
    switches: {}
  }, 'only runtime changes are written, as they were given: defaults apply when the file is loaded')
  t.notOk('keep' in overlay.servers)
  t.same(await readdir(join(dir, 'nested')), ['registry.json'], 'no temporary file is left behind')
  t.equal((await stat(file)).mode & 0o777, 0o600, 'only the owner may read it (it holds credentials)')
  t.ok((await readFile(file, 'utf8')).endsWith('}\n'))
})

test('an id added then removed at run time is persisted as a removal', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'registry.json')
  const { r } = registry([], file)
  r.add({ id: 'temp', url: 'http://127.0.0.1:1/' })
  r.remove('temp')
  await r.flush()
  t.same(JSON.parse(await readFile(file, 'utf8')), { servers: { temp: null }, switches: {} })
})

test('patch switches a server on, off or drains it without its definition in the file; a restart keeps the switch', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'registry.json')
  const secret = configured('secret', { headers: { authorization: 'Bearer expanded-secret' } })
  const { r, changes } = registry([secret, configured('other')], file)
  const drained = r.patch('secret', { weight: 0 })
  t.match(drained, { id: 'secret', weight: 0, enabled: true, headers: { authorization: 'Bearer expanded-secret' } })
  t.ok(Object.isFrozen(drained))
  t.match(changes, [{ type: 'updated', server: { weight: 0 }, previous: { weight: 1 } }])
  r.patch('secret', { enabled: false })
  t.match(r.get('secret'), { weight: 0, enabled: false })
  await r.flush()
  const text = await readFile(file, 'utf8')
  t.same(JSON.parse(text), { servers: {}, switches: { secret: { weight: 0, enabled: false } } })
  t.notOk(text.includes('expanded-secret'), 'the configured secret never reaches the file')

  const again = registry([secret, configured('other')], file)
  await again.r.load()
  t.match(again.r.get('secret'), { weight: 0, enabled: false, headers: { authorization: 'Bearer expanded-secret' } }, 'the switch survives a restart')
  again.r.update('secret', { url: 'http://127.0.0.1:9/secret' })
  await again.r.flush()
  t.same(JSON.parse(await readFile(file, 'utf8')).switches, {}, 'a replacement drops the switch')
  t.throws(() => r.patch('nope', { enabled: true }), { code: 'MCPGW_ERR_SERVER_NOT_FOUND' })

  // Undrain (weight: null) goes back to the weight the definition gives, not to 1; other switches stay.
  const heavy = registry([configured('heavy', { weight: 3 })], null)
  heavy.r.patch('heavy', { weight: 0 })
  heavy.r.patch('heavy', { enabled: false })
  t.match(heavy.r.patch('heavy', { weight: null }), { weight: 3, enabled: false })
  t.match(heavy.r.patch('heavy', { enabled: true }), { weight: 3, enabled: true })

  // A switch whose server left the configuration is dropped: a new server of that id starts as configured.
  await writeFile(file, JSON.stringify({ servers: {}, switches: { gone: { weight: 0 }, other: { weight: 'heavy', enabled: false } } }))
  const later = registry([configured('other')], file)
  await later.r.load()
  t.match(later.r.get('other'), { weight: 1, enabled: false }, 'a switch value that is not one is ignored')
  later.r.add({ id: 'gone', url: 'http://127.0.0.1:1/gone' })
  t.equal(later.r.get('gone')?.weight, 1)
  await later.r.flush()
  t.same(JSON.parse(await readFile(file, 'utf8')).switches, { other: { enabled: false } })
})

test('reloading the overlay into a new Registry applies adds, replacements and removals', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'registry.json')
  const config = [configured('keep'), configured('gone'), configured('swap')]
  const first = registry(config, file).r
  first.add({ id: 'new', url: 'http://127.0.0.1:1/new', service: 'keep', headers: { authorization: 'Bearer x' } })
  first.update('swap', { url: 'http://127.0.0.1:2/swap', weight: 3 })
  first.remove('gone')
  await first.flush()

  const { r: second, changes } = registry(config, file)
  await second.load()
  t.same(second.list(), first.list(), 'the same servers with the same definitions')
  t.same(second.services(), ['keep', 'swap'])
  t.same(second.replicas('keep').map(s => s.id), ['keep', 'new'])
  t.equal(second.get('swap')?.weight, 3)
  t.same(second.get('new')?.headers, { authorization: 'Bearer x' })
  t.same(changes, [], 'loading is not a change')

  second.add({ id: 'later', url: 'http://127.0.0.1:1/later' })
  await second.flush()
  const overlay = JSON.parse(await readFile(file, 'utf8'))
  t.same(Object.keys(overlay.servers).sort(), ['gone', 'later', 'new', 'swap'], 'later changes extend the loaded overlay')
})

test('a persisted stdio server reloads', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'registry.json')
  const first = registry([], file).r
  first.add({ id: 'local', command: 'node', args: ['server.js'], env: { A: '1' } })
  await first.flush()

  const second = registry([], file).r
  await t.resolves(second.load(), 'the overlay written by the registry is accepted by the registry')
})

test('an overlay entry is validated and keyed by its id', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'registry.json')
  await writeFile(file, JSON.stringify({ servers: { named: { url: 'http://127.0.0.1:1/' } } }))
  const ok = registry([], file).r
  await ok.load()
  t.equal(ok.get('named')?.id, 'named', 'the key gives the id')

  await writeFile(file, JSON.stringify({ servers: { bad: { url: 'ftp://x' } } }))
  await t.rejects(registry([], file).r.load(), {
    code: 'MCPGW_ERR_SERVER_INVALID',
    message: `Invalid server definition: ${file}: servers.bad.url: must match pattern "^(https?|wss?)://"`
  })

  await writeFile(file, '{}')
  const empty = registry([configured('a')], file).r
  await empty.load()
  t.same(empty.list().map(s => s.id), ['a'], 'a file without servers changes nothing')
})

test('a registry file that cannot be written is logged, and the registry keeps working', async (t) => {
  const dir = await tempDir(t)
  const blocker = join(dir, 'not-a-dir')
  await writeFile(blocker, 'x')
  const errors: Array<[object, string | undefined]> = []
  const log: Logger = { ...silentLogger, error (obj, msg) { errors.push([obj, msg]) } }
  const { r } = registry([], join(blocker, 'registry.json'), log)
  r.add({ id: 'a', url: 'http://127.0.0.1:1/' })
  await r.flush()
  t.equal(errors.length, 1)
  t.equal(errors[0]?.[1], 'could not persist the registry: runtime changes will be lost on restart')
  t.match(errors[0]?.[0], { file: join(blocker, 'registry.json'), err: Error })
  t.equal(r.get('a')?.id, 'a')
  r.add({ id: 'b', url: 'http://127.0.0.1:1/' })
  await r.flush()
  t.equal(errors.length, 2, 'one failed write does not stop the next')
})

test('flush waits for every change made so far', async (t) => {
  const dir = await tempDir(t)
  const file = join(dir, 'registry.json')
  const { r } = registry([], file)
  for (let i = 0; i < 10; i++) r.add({ id: `s${i}`, url: 'http://127.0.0.1:1/' })
  await r.flush()
  t.equal(Object.keys(JSON.parse(await readFile(file, 'utf8')).servers).length, 10, 'the last write wins and holds all ten')
})

test('a corrupt registry file or one whose replicas disagree stops start-up with a coded error', async (t) => {
  const dir = await tempDir(t)
  const corrupt = join(dir, 'corrupt.json')
  await writeFile(corrupt, '{ "servers": ')
  await t.rejects(registry([], corrupt).r.load(), { code: 'MCPGW_ERR_CONFIG_INVALID', message: /registry file .*corrupt\.json: it is not valid JSON/ })

  const conflicting = join(dir, 'conflicting.json')
  await writeFile(conflicting, JSON.stringify({ servers: { 'a-2': { url: 'http://127.0.0.1:2/', service: 'a', stateless: true } } }))
  const configured = normalizeServer({ id: 'a-1', url: 'http://127.0.0.1:1/', service: 'a' }, DEFAULT_UPSTREAM)
  await t.rejects(registry([configured], conflicting).r.load(), { code: 'MCPGW_ERR_CONFIG_INVALID', message: /sessionMode differs/ })
})
