/* eslint-disable no-template-curly-in-string -- `${VAR}` in plain strings is the configuration syntax under test */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Test as TapTest, test } from 'tap'
import { sha256Hex } from '../../../src/config/auth.js'
import { loadConfigFile, resolveConfig } from '../../../src/config/load.js'
import { DEFAULT_UPSTREAM, DEFAULTS, isResolvedConfig } from '../../../src/config/normalize.js'

type Test = { teardown (fn: () => unknown): void }

const noEnv = {}
const KEY = 'k'.repeat(16)

/** Resolves with no environment at all, so the machine running the tests cannot leak in. */
const resolve = (input: unknown) => resolveConfig(input, { env: noEnv })

async function writeTemp (t: Test, name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcpgw-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, name)
  await writeFile(file, text)
  return file
}

/** The problems of an invalid configuration, checking the error's code and that its message lists each one. */
function problemsOf (t: TapTest, fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    const e = err as Error & { code?: string, problems?: string[] }
    t.equal(e.code, 'MCPGW_ERR_CONFIG_INVALID')
    const problems = e.problems ?? []
    for (const problem of problems) t.ok(e.message.includes(`\n  - ${problem}`), `the message lists: ${problem}`)
    return problems
  }
  t.fail('expected MCPGW_ERR_CONFIG_INVALID')
  return []
}

test('an empty configuration gets every default', async (t) => {
  const config = resolve({})
  t.same(config, {
    host: '127.0.0.1',
    port: 3000,
    logLevel: 'info',
    name: 'fastify-mcp-gateway',
    prefixMode: 'always',
    separator: '__',
    pageSize: 500,
    allowedOrigins: [],
    allowedHosts: null,
    bodyLimit: 4194304,
    tls: null,
    sessions: { idleTimeout: 30 * 60_000, max: 10_000, maxPerAddress: 0, maxPerPrincipal: 0, replayEvents: 500, replayBytes: 1024 * 1024, replayBytesTotal: 64 * 1024 * 1024 },
    upstreamDefaults: {
      timeout: 60_000,
      connectTimeout: 10_000,
      maxConnections: 16,
      healthCheck: { intervalMs: 30_000, timeoutMs: 5000, unhealthyThreshold: 2, healthyThreshold: 1, retryIntervalMs: 2000 },
      reconnectMin: 500,
      reconnectMax: 30_000,
      maxSessions: 100,
      sessionIdleTimeout: 5 * 60_000,
      maxConcurrent: 0,
      queueSize: 100,
      queueTimeout: 5000
    },
    limits: { maxJsonDepth: 128, maxBatch: 100, maxUpstreamMessage: 32 * 1024 * 1024, maxSubscriptions: 1000, maxSubscriptionsTotal: 20_000, maxInFlight: 100, maxClientBuffer: 64 * 1024 * 1024 },
    startupWait: 5000,
    shutdownTimeout: 10_000,
    shutdownDelay: 0,
    auth: null,
    rateLimit: null,
    balancer: { strategy: 'peak-ewma', hashOn: 'address' },
    overload: { maxEventLoopDelayMs: 1000, maxHeapUsedBytes: 0, maxRssBytes: 0, retryAfterSec: 10 },
    retryBudget: { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 },
    outlierDetection: { errorRate: 0.5, minCalls: 10, windowMs: 10_000, consecutiveFailures: 0, ejectionMs: 30_000, maxEjectionMs: 300_000, maxEjectedShare: 0.5 },
    hedging: null,
    dashboard: { enabled: true, intervalMs: 2000 },
    cache: null,
    redis: null,
    webhooks: {},
    alerts: [],
    alertIntervalMs: 10_000,
    accessLog: false,
    logFile: null,
    tracing: { enabled: null },
    anomaly: { baselineMs: 300_000, warmup: 10, minCalls: 5 },
    circuitBreaker: { failureThreshold: 5, openMs: 5000, maxOpenMs: 60_000, halfOpenCalls: 1 },
    admin: { apiKey: null },
    registryFile: null,
    metrics: { enabled: true, prefix: 'mcp_gateway_', defaultMetrics: true },
    servers: []
  })
  t.notOk('instructions' in config, 'no instructions unless configured')
  t.equal(config.host, DEFAULTS.host)
  t.same(config.upstreamDefaults, DEFAULT_UPSTREAM)
  t.ok(isResolvedConfig(config), 'branded as resolved')
  t.notOk(isResolvedConfig({ ...config }), 'a copy is not branded')
  t.notOk(isResolvedConfig(null))
})

test('configured values replace the defaults', async (t) => {
  const config = resolve({
    $schema: './schema.json',
    host: '0.0.0.0',
    port: 8080,
    logLevel: 'debug',
    name: 'my-gateway',
    instructions: 'Use the tools.',
    prefixMode: 'conditional',
    separator: '-',
    pageSize: 50,
    allowedOrigins: ['HTTPS://App.Example.com', '*'],
    allowedHosts: ['GW.example.com'],
    sessions: { idleTimeout: 1000, max: 5 },
    upstreamDefaults: { timeout: 5000, reconnectMin: 100 },
    startupWait: 0,
    shutdownTimeout: 2000,
    admin: { apiKey: KEY },
    registryFile: '/var/lib/gw/registry.json',
    metrics: { enabled: false, prefix: 'gw_', defaultMetrics: false }
  })
  t.match(config, {
    host: '0.0.0.0',
    port: 8080,
    logLevel: 'debug',
    name: 'my-gateway',
    instructions: 'Use the tools.',
    prefixMode: 'conditional',
    separator: '-',
    pageSize: 50,
    sessions: { idleTimeout: 1000, max: 5 },
    startupWait: 0,
    shutdownTimeout: 2000,
    admin: { apiKey: KEY },
    registryFile: '/var/lib/gw/registry.json',
    metrics: { enabled: false, prefix: 'gw_', defaultMetrics: false }
  })
  t.same(config.allowedOrigins, ['https://app.example.com', '*'], 'origins are lowercased')
  t.same(config.allowedHosts, ['gw.example.com'], 'hosts are lowercased')
  t.same(config.upstreamDefaults, { ...DEFAULT_UPSTREAM, timeout: 5000, reconnectMin: 100 }, 'upstream defaults merge field by field')
})

test('servers[] entries get their defaults and an inferred transport', async (t) => {
  const config = resolve({
    upstreamDefaults: { timeout: 1234, maxConnections: 4 },
    servers: [
      { id: 'remote', url: 'http://127.0.0.1:3001/mcp' },
      { id: 'local', command: 'node', args: ['server.js'], env: { DEBUG: '1' }, cwd: '/srv' },
      { id: 'tuned', url: 'https://mcp.example.com/mcp', timeout: 99, maxConnections: 2, weight: 0, enabled: false, tags: ['x'], stateless: true, service: 'svc', headers: { authorization: 'Bearer t' } }
    ]
  })
  t.same(config.servers, [
    {
      id: 'remote',
      transport: 'streamable-http',
      url: 'http://127.0.0.1:3001/mcp',
      args: [],
      env: {},
      service: 'remote',
      weight: 1,
      maxConnections: 4,
      timeout: 1234,
      headers: {},
      enabled: true,
      tags: [],
      sessionMode: 'auto',
      forwardIdentity: false,
      maxSessions: DEFAULT_UPSTREAM.maxSessions,
      maxConcurrent: 0,
      queue: { size: 100, timeoutMs: 5000 },
      healthCheck: { intervalMs: 30_000, timeoutMs: 5000, unhealthyThreshold: 2, healthyThreshold: 1, retryIntervalMs: 2000 }
    },
    {
      id: 'local',
      transport: 'stdio',
      command: 'node',
      args: ['server.js'],
      env: { DEBUG: '1' },
      cwd: '/srv',
      service: 'local',
      weight: 1,
      maxConnections: 4,
      timeout: 1234,
      headers: {},
      enabled: true,
      tags: [],
      sessionMode: 'auto',
      forwardIdentity: false,
      maxSessions: DEFAULT_UPSTREAM.maxSessions,
      maxConcurrent: 0,
      queue: { size: 100, timeoutMs: 5000 },
      healthCheck: { intervalMs: 30_000, timeoutMs: 5000, unhealthyThreshold: 2, healthyThreshold: 1, retryIntervalMs: 2000 }
    },
    {
      id: 'tuned',
      transport: 'streamable-http',
      url: 'https://mcp.example.com/mcp',
      args: [],
      env: {},
      service: 'svc',
      weight: 0,
      maxConnections: 2,
      timeout: 99,
      headers: { authorization: 'Bearer t' },
      enabled: false,
      tags: ['x'],
      sessionMode: 'shared',
      forwardIdentity: false,
      maxSessions: DEFAULT_UPSTREAM.maxSessions,
      maxConcurrent: 0,
      queue: { size: 100, timeoutMs: 5000 },
      healthCheck: { intervalMs: 30_000, timeoutMs: 5000, unhealthyThreshold: 2, healthyThreshold: 1, retryIntervalMs: 2000 }
    }
  ])
})

test('the mcpServers map of Claude Desktop, Cursor and VS Code is read too', async (t) => {
  const config = resolve({
    mcpServers: {
      filesystem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'], env: { NODE_ENV: 'production' } },
      remote: { url: 'http://127.0.0.1:3001/mcp' },
      'vs.code': { type: 'http', url: 'http://127.0.0.1:3002/mcp' },
      cursor: { type: 'streamableHttp', url: 'http://127.0.0.1:3003/mcp' },
      typed: { type: 'streamable-http', url: 'http://127.0.0.1:3004/mcp' },
      piped: { type: 'stdio', command: 'server' },
      off: { command: 'server', disabled: true },
      on: { command: 'server', disabled: false }
    }
  })
  const byId = Object.fromEntries(config.servers.map(s => [s.id, s]))
  t.same(Object.keys(byId), ['filesystem', 'remote', 'vs.code', 'cursor', 'typed', 'piped', 'off', 'on'], 'the map order is kept')
  t.match(byId.filesystem, {
    transport: 'stdio',
    command: 'npx',
    args: ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'],
    env: { NODE_ENV: 'production' },
    service: 'filesystem',
    enabled: true
  })
  t.equal(byId.remote?.transport, 'streamable-http')
  t.equal(byId['vs.code']?.transport, 'streamable-http')
  t.equal(byId.cursor?.transport, 'streamable-http')
  t.equal(byId.typed?.transport, 'streamable-http')
  t.equal(byId.piped?.transport, 'stdio')
  t.equal(byId.off?.enabled, false, 'disabled: true is enabled: false')
  t.equal(byId.on?.enabled, true)
  for (const server of config.servers) {
    t.notOk('type' in server, 'type is not carried over')
    t.notOk('disabled' in server, 'disabled is not carried over')
  }
})

test('both list shapes can be combined, servers[] first', async (t) => {
  const config = resolve({
    servers: [{ id: 'one', url: 'http://127.0.0.1:1/' }],
    mcpServers: { two: { command: 'x' } }
  })
  t.same(config.servers.map(s => s.id), ['one', 'two'])
})

test('a type that agrees with transport, or enabled that agrees with disabled, is accepted', async (t) => {
  const config = resolve({
    mcpServers: {
      a: { type: 'stdio', transport: 'stdio', command: 'x' },
      b: { type: 'http', transport: 'streamable-http', url: 'http://127.0.0.1:1/' },
      c: { command: 'x', disabled: true, enabled: false }
    }
  })
  t.same(config.servers.map(s => [s.id, s.transport, s.enabled]), [['a', 'stdio', true], ['b', 'streamable-http', true], ['c', 'stdio', false]])
})

test('the result is deeply frozen', async (t) => {
  const config = resolve({
    allowedOrigins: ['*'],
    servers: [{ id: 'a', url: 'http://127.0.0.1:1/', headers: { h: 'v' }, tags: ['t'], tools: { allow: ['x'], rename: { x: 'y' } } }]
  })
  const server = config.servers[0]
  const frozen: Array<[string, unknown]> = [
    ['config', config],
    ['sessions', config.sessions],
    ['upstreamDefaults', config.upstreamDefaults],
    ['admin', config.admin],
    ['metrics', config.metrics],
    ['allowedOrigins', config.allowedOrigins],
    ['servers', config.servers],
    ['servers[0]', server],
    ['servers[0].headers', server?.headers],
    ['servers[0].args', server?.args],
    ['servers[0].env', server?.env],
    ['servers[0].tags', server?.tags],
    ['servers[0].tools', server?.tools],
    ['servers[0].tools.allow', server?.tools?.allow],
    ['servers[0].tools.rename', server?.tools?.rename]
  ]
  for (const [name, value] of frozen) t.ok(Object.isFrozen(value), `${name} is frozen`)
  t.throws(() => { (config as { port: number }).port = 1 }, TypeError)
  t.throws(() => { (config.servers as unknown[]).push({}) }, TypeError)
  t.equal(config.port, 3000)
})

test('resolving does not modify its input', async (t) => {
  const input = { servers: [{ id: 'a', url: 'http://127.0.0.1:1/' }] }
  const copy = structuredClone(input)
  resolveConfig(input, { env: { PORT: '9999' } })
  t.same(input, copy)
  t.notOk(Object.isFrozen(input.servers[0]))
})

test('anything but a JSON object is refused', async (t) => {
  for (const input of [null, [], 'config', 42, undefined]) {
    t.throws(() => resolve(input), { code: 'MCPGW_ERR_CONFIG_INVALID', message: 'Invalid configuration in options: expected a JSON object' }, String(input))
  }
  t.throws(() => resolveConfig([], { source: 'gateway.json' }), { message: 'Invalid configuration in gateway.json: expected a JSON object' })
})

test('an invalid configuration names its source and lists every problem', async (t) => {
  let caught: (Error & { code?: string, problems?: string[] }) | undefined
  try {
    resolveConfig({ port: 'x', host: '', colour: 'red' }, { env: noEnv, source: '/etc/gw.json' })
  } catch (err) {
    caught = err as typeof caught
  }
  t.equal(caught?.code, 'MCPGW_ERR_CONFIG_INVALID')
  t.equal(caught?.message, 'Invalid configuration in /etc/gw.json:\n' +
    '  - port: must be integer\n' +
    '  - host: must not have fewer than 1 characters\n' +
    '  - (root): unknown key "colour"')
  t.same(caught?.problems, ['port: must be integer', 'host: must not have fewer than 1 characters', '(root): unknown key "colour"'])
})

test('unknown keys are errors that name the key and where it is', async (t) => {
  const problems = problemsOf(t, () => resolve({
    mcpServers: { foo: { command: 'x', autoApprove: [] } },
    servers: [{ id: 'a', url: 'http://127.0.0.1:1/', tools: { allow: ['x'], only: ['y'] } }],
    sessions: { ttl: 1 }
  }))
  t.same(problems.sort(), [
    'mcpServers.foo: unknown key "autoApprove"',
    'servers[0].tools: unknown key "only"',
    'sessions: unknown key "ttl"'
  ])
})

test('enum errors list the allowed values', async (t) => {
  t.same(problemsOf(t, () => resolve({ logLevel: 'loud' })),
    ['logLevel: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"'])
  t.same(problemsOf(t, () => resolve({ prefixMode: 'sometimes' })),
    ['prefixMode: must be one of "always", "conditional", "never"'])
  t.same(problemsOf(t, () => resolve({ servers: [{ id: 'a', url: 'http://127.0.0.1:1/', transport: 'grpc' }] })),
    ['servers[0].transport: must be one of "streamable-http", "sse", "websocket", "stdio"'])
  t.same(problemsOf(t, () => resolve({ mcpServers: { a: { type: 'grpc', url: 'http://127.0.0.1:1/' } } })),
    ['mcpServers.a.type: must be one of "stdio", "http", "streamable-http", "streamableHttp", "sse", "websocket"'])
})

test('every problem is listed, even next to an enum error', async (t) => {
  const problems = problemsOf(t, () => resolve({
    logLevel: 'loud',
    prefixMode: 'sometimes',
    mcpServers: { foo: { command: 'x', autoApprove: [] } }
  }))
  t.ok(problems.includes('logLevel: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"'))
  t.ok(problems.includes('prefixMode: must be one of "always", "conditional", "never"'), 'the second enum error')
  t.ok(problems.includes('mcpServers.foo: unknown key "autoApprove"'), 'the unknown key')
  t.equal(problems.length, 3)
})

test('many unknown keys never let an invalid configuration through', async (t) => {
  const junk = Object.fromEntries('abcdefgh'.split('').map(k => [k, 1]))
  t.throws(() => resolve({ ...junk, port: 'oops' }), { code: 'MCPGW_ERR_CONFIG_INVALID' }, 'eight unknown keys and a string port')
  t.throws(() => resolve({ ...Object.fromEntries('abcdefg'.split('').map(k => [k, 1])), port: 'oops' }), { code: 'MCPGW_ERR_CONFIG_INVALID' },
    'seven are still caught')
})

test('url and command are exclusive, and one of them is needed', async (t) => {
  t.same(problemsOf(t, () => resolve({
    servers: [
      { id: 'both', url: 'http://127.0.0.1:1/', command: 'x' },
      { id: 'neither' }
    ],
    mcpServers: { empty: {} }
  })), [
    'servers[0]: set either url (an HTTP server) or command (a stdio server), not both',
    'servers[1]: needs url (an HTTP server) or command (a stdio server)',
    'mcpServers.empty: needs url (an HTTP server) or command (a stdio server)'
  ])
})

test('an explicit transport must fit url or command', async (t) => {
  t.same(problemsOf(t, () => resolve({
    servers: [
      { id: 'a', url: 'http://127.0.0.1:1/', transport: 'stdio' },
      { id: 'b', command: 'x', transport: 'streamable-http' }
    ],
    mcpServers: {
      c: { type: 'http', command: 'x' },
      d: { type: 'stdio', url: 'http://127.0.0.1:1/' },
      e: { type: 'http', transport: 'stdio', command: 'x' },
      f: { command: 'x', disabled: true, enabled: true }
    }
  })), [
    'servers[0].transport: "stdio" needs command, but url is set',
    'servers[1].transport: "streamable-http" needs url, but command is set',
    'mcpServers.c.transport: "streamable-http" needs url, but command is set',
    'mcpServers.d.transport: "stdio" needs command, but url is set',
    'mcpServers.e: type "http" and transport "stdio" disagree; keep one',
    'mcpServers.f: enabled and disabled contradict each other; keep one'
  ])
})

test('urls must be valid and free of credentials; stdio servers take no headers', async (t) => {
  t.same(problemsOf(t, () => resolve({ servers: [{ id: 'a', url: 'ftp://127.0.0.1/' }] })),
    ['servers[0].url: must match pattern "^(https?|wss?)://"'])
  t.same(problemsOf(t, () => resolve({
    servers: [
      { id: 'b', url: 'http://[bad' },
      { id: 'c', url: 'https://user:secret@mcp.example.com/' },
      { id: 'd', command: 'x', headers: { authorization: 'x' } }
    ]
  })), [
    'servers[0].url: "http://[bad" is not a valid URL',
    'servers[1].url: put credentials in headers, not in the URL',
    'servers[2].headers: only HTTP upstreams send headers; use env for a stdio server'
  ])
})

test('legacy SSE and WebSocket upstreams: explicit, inferred from ws(s)://, and the hosts\' "type" spellings', async (t) => {
  const config = resolve({
    servers: [
      { id: 'legacy', url: 'http://127.0.0.1:3001/sse', transport: 'sse', headers: { authorization: 'Bearer s' } },
      { id: 'socket', url: 'ws://127.0.0.1:3002/mcp', transport: 'websocket', headers: { authorization: 'Bearer w' } },
      { id: 'inferred', url: 'wss://mcp.example.com/ws' },
      { id: 'plain', url: 'https://mcp.example.com/mcp' }
    ],
    mcpServers: {
      vscode: { type: 'sse', url: 'http://127.0.0.1:3003/sse' },
      typed: { type: 'websocket', url: 'ws://127.0.0.1:3004/' },
      agreeing: { type: 'sse', transport: 'sse', url: 'http://127.0.0.1:3005/sse' },
      bare: { url: 'ws://127.0.0.1:3006/' }
    }
  })
  t.same(config.servers.map(s => [s.id, s.transport]), [
    ['legacy', 'sse'],
    ['socket', 'websocket'],
    ['inferred', 'websocket'],
    ['plain', 'streamable-http'],
    ['vscode', 'sse'],
    ['typed', 'websocket'],
    ['agreeing', 'sse'],
    ['bare', 'websocket']
  ])
  t.same(config.servers[0]?.headers, { authorization: 'Bearer s' }, 'sse upstreams take headers')
  t.same(config.servers[1]?.headers, { authorization: 'Bearer w' }, 'websocket upstreams take headers')
  t.equal(config.servers[1]?.url, 'ws://127.0.0.1:3002/mcp')
})

test('a WebSocket url needs transport websocket, and transport websocket needs one', async (t) => {
  t.same(problemsOf(t, () => resolve({
    servers: [
      { id: 'a', url: 'http://127.0.0.1:1/', transport: 'websocket' },
      { id: 'b', url: 'ws://127.0.0.1:1/', transport: 'sse' },
      { id: 'c', url: 'wss://127.0.0.1:1/', transport: 'streamable-http' },
      { id: 'd', command: 'x', transport: 'websocket' },
      { id: 'e', command: 'x', transport: 'sse' }
    ],
    mcpServers: {
      f: { type: 'http', url: 'ws://127.0.0.1:1/' },
      g: { type: 'sse', transport: 'websocket', url: 'ws://127.0.0.1:1/' },
      h: { type: 'websocket', url: 'https://127.0.0.1:1/' }
    }
  })), [
    'servers[0].url: transport "websocket" needs a ws:// or wss:// URL, not "http://127.0.0.1:1/"',
    'servers[1].url: "ws://127.0.0.1:1/" is a WebSocket URL, which needs transport "websocket" (transport is "sse"; it takes http:// or https://)',
    'servers[2].url: "wss://127.0.0.1:1/" is a WebSocket URL, which needs transport "websocket" ' +
      '(transport is "streamable-http"; it takes http:// or https://)',
    'servers[3].transport: "websocket" needs url, but command is set',
    'servers[4].transport: "sse" needs url, but command is set',
    'mcpServers.f.url: "ws://127.0.0.1:1/" is a WebSocket URL, which needs transport "websocket" ' +
      '(transport is "streamable-http"; it takes http:// or https://)',
    'mcpServers.g: type "sse" and transport "websocket" disagree; keep one',
    'mcpServers.h.url: transport "websocket" needs a ws:// or wss:// URL, not "https://127.0.0.1:1/"'
  ])
  t.same(problemsOf(t, () => resolve({ servers: [{ id: 'a', url: 'ws://user:secret@127.0.0.1:1/' }] })),
    ['servers[0].url: put credentials in headers, not in the URL'], 'a WebSocket url is checked for credentials too')
})

test('ids must be unique across both list shapes', async (t) => {
  t.same(problemsOf(t, () => resolve({
    servers: [{ id: 'a', url: 'http://127.0.0.1:1/' }, { id: 'a', command: 'x' }],
    mcpServers: { a: { command: 'y' } }
  })), [
    'servers[1]: id "a" is already used by servers[0]; ids must be unique',
    'mcpServers.a: id "a" is already used by servers[0]; ids must be unique'
  ])
})

test('mcpServers names must be valid ids, and odd names are quoted in messages', async (t) => {
  const rule = 'the name must start with a letter or digit and use only letters, digits, "_", "-", "." (it becomes the tool prefix)'
  t.same(problemsOf(t, () => resolve({
    mcpServers: {
      'my server': { command: 'x' },
      '-dash': { command: 'x' },
      '.dot': { command: 'x' },
      'ok.name_1-2': { command: 'x' }
    }
  })), [`mcpServers["my server"]: ${rule}`, `mcpServers["-dash"]: ${rule}`, `mcpServers[".dot"]: ${rule}`])
  t.same(problemsOf(t, () => resolve({ mcpServers: { 'x y': { bogus: 1 } } })), ['mcpServers["x y"]: unknown key "bogus"'])
  t.equal(resolve({ mcpServers: { ['a'.repeat(64)]: { command: 'x' } } }).servers[0]?.id.length, 64, '64 characters is the limit')
  t.throws(() => resolve({ mcpServers: { ['a'.repeat(65)]: { command: 'x' } } }), { code: 'MCPGW_ERR_CONFIG_INVALID' }, 'a 65-character name')
})

test('replicas of one service must agree on stateless, tools and prompts', async (t) => {
  t.same(problemsOf(t, () => resolve({
    servers: [
      { id: 'a-1', service: 'a', url: 'http://127.0.0.1:1/', stateless: true, tools: { allow: ['x'] }, prompts: { deny: ['p'] } },
      { id: 'a-2', service: 'a', url: 'http://127.0.0.1:2/', tools: { allow: ['y'] }, prompts: { deny: ['q'] } }
    ]
  })), [
    'server "a-2": its tools options differ from those of "a-1", another replica of service "a"; set them the same, or on one replica only',
    'server "a-2": its prompts options differ from those of "a-1", another replica of service "a"; set them the same, or on one replica only',
    'server "a-2": sessionMode differs from "a-1", another replica of service "a"; replicas must agree'
  ])
  const ok = resolve({
    servers: [
      { id: 'a-1', service: 'a', url: 'http://127.0.0.1:1/', stateless: true, tools: { allow: ['x'] } },
      { id: 'a-2', service: 'a', url: 'http://127.0.0.1:2/', stateless: true, tools: { allow: ['x'] } },
      { id: 'a-3', service: 'a', url: 'http://127.0.0.1:3/', stateless: true }
    ],
    mcpServers: { 'a-4': { service: 'a', command: 'x', stateless: true } }
  })
  t.equal(ok.servers.length, 4, 'equal or unset options agree')
})

test('replicas disagreeing with each other are caught even when the first replica sets nothing', async (t) => {
  let error: unknown
  try {
    resolve({
      servers: [
        { id: 's-1', service: 's', url: 'http://127.0.0.1:1/' },
        { id: 's-2', service: 's', url: 'http://127.0.0.1:2/', tools: { allow: ['x'] } },
        { id: 's-3', service: 's', url: 'http://127.0.0.1:3/', tools: { allow: ['y'] } }
      ]
    })
  } catch (err) {
    error = err
  }
  t.match(error, { code: 'MCPGW_ERR_CONFIG_INVALID', message: /server "s-3": its tools options differ from those of "s-2"/ }, 's-2 and s-3 disagree')
})

test('upstreamDefaults.reconnectMin must not exceed reconnectMax, and origins must be origins', async (t) => {
  t.same(problemsOf(t, () => resolve({
    upstreamDefaults: { reconnectMin: 5000, reconnectMax: 1000 },
    allowedOrigins: ['https://ok.example.com', '*', 'https://x.example.com/', 'nope', 'http://localhost:3000']
  })), [
    'upstreamDefaults.reconnectMin: must not be larger than upstreamDefaults.reconnectMax',
    'allowedOrigins[2]: "https://x.example.com/" is not an origin like "https://app.example.com" or "*"',
    'allowedOrigins[3]: "nope" is not an origin like "https://app.example.com" or "*"'
  ])
  t.same(problemsOf(t, () => resolve({ upstreamDefaults: { reconnectMin: 60_000 } })),
    ['upstreamDefaults.reconnectMin: must not be larger than upstreamDefaults.reconnectMax'], 'checked against the default maximum')
})

test('schema and cross-field problems are reported in one error when both exist', async (t) => {
  const problems = problemsOf(t, () => resolve({ port: -1, servers: [{ id: 'a' }] }))
  t.same(problems, ['port: must be >= 0'], 'schema problems stop before the cross-field rules')
})

test('${VAR} and ${VAR:-default} are expanded in url, headers, env, args, command and cwd', async (t) => {
  const env = { GW_HOST: '127.0.0.1:3001', TOKEN: 's3cret', HOME_DIR: '/home/me', BIN: 'node', EMPTY: '' }
  const config = resolveConfig({
    servers: [
      { id: 'http', url: 'http://${GW_HOST}/mcp', headers: { authorization: 'Bearer ${TOKEN}', 'x-region': '${REGION:-eu}' } },
      { id: 'stdio', command: '${BIN}', args: ['--home=${HOME_DIR}', '${MISSING:-fallback}', '${EMPTY:-used-when-empty}', '$NOT_BRACED'], env: { API_KEY: '${TOKEN}', BLANK: '${NOPE:-}' }, cwd: '${HOME_DIR}/srv' }
    ],
    mcpServers: { remote: { url: 'https://${GW_HOST}/x', headers: { 'x-token': '${TOKEN}' } } }
  }, { env, envOverrides: false })
  const [http, stdio, remote] = config.servers
  t.equal(http?.url, 'http://127.0.0.1:3001/mcp')
  t.same(http?.headers, { authorization: 'Bearer s3cret', 'x-region': 'eu' })
  t.equal(stdio?.command, 'node')
  t.same(stdio?.args, ['--home=/home/me', 'fallback', 'used-when-empty', '$NOT_BRACED'])
  t.same(stdio?.env, { API_KEY: 's3cret', BLANK: '' })
  t.equal(stdio?.cwd, '/home/me/srv')
  t.equal(remote?.url, 'https://127.0.0.1:3001/x')
  t.same(remote?.headers, { 'x-token': 's3cret' })
})

test('other fields are not expanded', async (t) => {
  const config = resolveConfig({ name: '${TOKEN}', servers: [{ id: 'a', url: 'http://127.0.0.1:1/', tags: ['${TOKEN}'] }] }, { env: { TOKEN: 'x' }, envOverrides: false })
  t.equal(config.name, '${TOKEN}')
  t.same(config.servers[0]?.tags, ['${TOKEN}'])
})

test('a missing variable is an error naming the variable and the field', async (t) => {
  t.same(problemsOf(t, () => resolveConfig({
    servers: [{ id: 'a', url: 'http://127.0.0.1:1/', headers: { authorization: 'Bearer ${TOKEN}' } }],
    mcpServers: { b: { command: 'x', args: ['ok', '${ARG}'], env: { KEY: '${EMPTY}' } } }
  }, { env: { EMPTY: '' }, envOverrides: false })), [
    'servers[0].headers.authorization: environment variable TOKEN is not set (write ${TOKEN:-default} for a fallback)',
    'mcpServers.b.args[1]: environment variable ARG is not set (write ${ARG:-default} for a fallback)',
    'mcpServers.b.env.KEY: environment variable EMPTY is not set (write ${EMPTY:-default} for a fallback)'
  ])
})

test('a url made entirely of a variable is expanded', async (t) => {
  let url: string | undefined
  try {
    url = resolveConfig({ servers: [{ id: 'a', url: '${MCP_URL}' }] }, { env: { MCP_URL: 'http://127.0.0.1:1/mcp' }, envOverrides: false }).servers[0]?.url
  } catch {}
  t.equal(url, 'http://127.0.0.1:1/mcp', 'url: "${MCP_URL}"')
})

test('PORT, HOST, LOG_LEVEL and ADMIN_API_KEY from the environment override the file', async (t) => {
  const config = resolveConfig({ port: 1, host: 'file-host', logLevel: 'warn', admin: { apiKey: 'f'.repeat(16) } }, {
    env: { PORT: '8080', HOST: '0.0.0.0', LOG_LEVEL: 'debug', ADMIN_API_KEY: KEY }
  })
  t.equal(config.port, 8080)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.logLevel, 'debug')
  t.equal(config.admin.apiKey, KEY)
  t.equal(resolveConfig({}, { env: { PORT: '0' } }).port, 0, 'port 0 (any free port) is valid')
  t.equal(resolveConfig({}, { env: { PORT: '65535' } }).port, 65535)
  t.equal(resolveConfig({}, { env: { ADMIN_API_KEY: KEY } }).admin.apiKey, KEY, 'the admin key needs no admin section in the file')
})

test('empty environment variables are ignored', async (t) => {
  const config = resolveConfig({ port: 1234, host: 'h', logLevel: 'warn' }, { env: { PORT: '', HOST: '', LOG_LEVEL: '', ADMIN_API_KEY: '' } })
  t.match(config, { port: 1234, host: 'h', logLevel: 'warn', admin: { apiKey: null } })
})

test('invalid environment overrides are reported, naming the variable', async (t) => {
  t.same(problemsOf(t, () => resolveConfig({}, { env: { PORT: 'eighty', LOG_LEVEL: 'loud', ADMIN_API_KEY: 'short' } })), [
    'PORT (environment): must be an integer from 0 to 65535, got "eighty"',
    'LOG_LEVEL (environment): must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    'ADMIN_API_KEY (environment): must be at least 16 characters'
  ])
  for (const port of ['-1', '65536', '80.5', '1e3x']) {
    t.same(problemsOf(t, () => resolveConfig({}, { env: { PORT: port } })),
      [`PORT (environment): must be an integer from 0 to 65535, got ${JSON.stringify(port)}`], port)
  }
})

test('environment problems and file problems are reported together', async (t) => {
  t.same(problemsOf(t, () => resolveConfig({ pageSize: 0 }, { env: { PORT: 'x' } })), [
    'PORT (environment): must be an integer from 0 to 65535, got "x"',
    'pageSize: must be >= 1'
  ])
})

test('envOverrides: false ignores PORT, HOST, LOG_LEVEL and ADMIN_API_KEY, valid or not', async (t) => {
  const config = resolveConfig({ port: 1 }, { envOverrides: false, env: { PORT: 'junk', HOST: '0.0.0.0', LOG_LEVEL: 'loud', ADMIN_API_KEY: 'short' } })
  t.match(config, { port: 1, host: '127.0.0.1', logLevel: 'info', admin: { apiKey: null } })
})

test('command-line overrides win over the environment and the file', async (t) => {
  const config = resolveConfig({ port: 1, host: 'file', logLevel: 'warn' }, {
    env: { PORT: '2', HOST: 'env', LOG_LEVEL: 'error' },
    overrides: { port: 3, host: 'cli', logLevel: 'trace' }
  })
  t.match(config, { port: 3, host: 'cli', logLevel: 'trace' })
  const partial = resolveConfig({ port: 1 }, { env: { PORT: '2', HOST: 'env' }, overrides: { port: 3 } })
  t.match(partial, { port: 3, host: 'env' }, 'only the overrides given apply')
  t.same(problemsOf(t, () => resolveConfig({}, { env: noEnv, overrides: { port: 70000, logLevel: 'loud' } })), [
    'port: must be <= 65535',
    'logLevel: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"'
  ], 'overrides are validated like the file')
  t.equal(resolveConfig({}, { envOverrides: false, overrides: { port: 4 } }).port, 4, 'they apply without envOverrides too')
})

test('loadConfigFile reads, validates and resolves a JSON file', async (t) => {
  const file = await writeTemp(t, 'gateway.json', JSON.stringify({
    port: 4000,
    mcpServers: { remote: { url: 'http://127.0.0.1:3001/mcp', headers: { authorization: 'Bearer ${TOKEN}' } } }
  }))
  const config = await loadConfigFile(file, { TOKEN: 't0k', HOST: '0.0.0.0' }, { port: 5000 })
  t.equal(config.port, 5000)
  t.equal(config.host, '0.0.0.0', 'the environment applies to files')
  t.same(config.servers[0]?.headers, { authorization: 'Bearer t0k' })
  t.ok(Object.isFrozen(config))
})

test('loadConfigFile names the file in validation errors', async (t) => {
  const file = await writeTemp(t, 'gateway.json', JSON.stringify({ port: 'x' }))
  await t.rejects(loadConfigFile(file, noEnv), {
    code: 'MCPGW_ERR_CONFIG_INVALID',
    message: `Invalid configuration in ${file}:\n  - port: must be integer`
  })
})

test('a file that is not valid JSON is MCPGW_ERR_CONFIG_INVALID naming the file', async (t) => {
  const file = await writeTemp(t, 'broken.json', '{ "port": 3000, }')
  await t.rejects(loadConfigFile(file, noEnv), {
    code: 'MCPGW_ERR_CONFIG_INVALID',
    message: new RegExp(`^Invalid configuration in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the file is not valid JSON \\(.+\\)$`)
  })
  const array = await writeTemp(t, 'array.json', '[]')
  await t.rejects(loadConfigFile(array, noEnv), { message: `Invalid configuration in ${array}: expected a JSON object` })
})

test('a missing file is MCPGW_ERR_CONFIG_READ naming the file', async (t) => {
  const file = join(tmpdir(), `mcpgw-missing-${process.pid}-${Date.now()}.json`)
  await t.rejects(loadConfigFile(file, noEnv), {
    code: 'MCPGW_ERR_CONFIG_READ',
    statusCode: 500,
    message: `Cannot read config file ${file}: no such file`
  })
})

test('an unreadable path is MCPGW_ERR_CONFIG_READ with the reason', async (t) => {
  const file = await writeTemp(t, 'gateway.json', '{}')
  const dir = join(file, '..')
  await t.rejects(loadConfigFile(dir, noEnv), { code: 'MCPGW_ERR_CONFIG_READ', message: `Cannot read config file ${dir}: EISDIR: illegal operation on a directory, read` }, 'a directory')
  if (process.getuid?.() !== 0) {
    await chmod(file, 0o000)
    await t.rejects(loadConfigFile(file, noEnv), { code: 'MCPGW_ERR_CONFIG_READ', message: /EACCES/ }, 'no permission')
  }
})

test('secrets of auth and admin come from the environment: ${NAME} and ${env:NAME} in keys, the JWT secret and the admin key', async (t) => {
  const config = resolveConfig({
    auth: { apiKeys: [{ name: 'ci', key: '${env:CI_KEY}' }], jwt: { secret: '${JWT_SECRET}' } },
    admin: { apiKey: '${env:ADMIN_KEY}' }
  }, { env: { CI_KEY: 'ci-key-0123456789abcdef', JWT_SECRET: 's'.repeat(32), ADMIN_KEY: 'admin-key-0123456789' }, envOverrides: false })
  t.equal(config.auth?.apiKeys[0]?.digest, sha256Hex('ci-key-0123456789abcdef'), 'the key is held as its digest')
  t.same(config.auth?.jwt?.key, { kind: 'secret', secret: 's'.repeat(32) })
  t.equal(config.admin.apiKey, 'admin-key-0123456789')
  t.throws(() => resolveConfig({ auth: { jwt: { secret: '${JWT_SECRET}' } } }, { env: {}, envOverrides: false }),
    { message: /auth\.jwt\.secret: environment variable JWT_SECRET is not set/ })
})

test('the example configs in config/ load: the default, the compose one, and the secured one with its variables set', async (t) => {
  const dir = new URL('../../../config/', import.meta.url)
  const env = { CI_API_KEY: 'ci-key-0123456789abcdef', ADMIN_API_KEY: 'admin-key-0123456789' }
  for (const name of ['gateway.json', 'compose.json', 'secure.example.json']) {
    const config = await loadConfigFile(new URL(name, dir).pathname, env)
    t.ok(config.servers.length > 0, `${name} loads`)
  }
  const secure = await loadConfigFile(new URL('secure.example.json', dir).pathname, env)
  t.same(secure.auth?.apiKeys.map(k => k.name), ['ci', 'ops'])
  t.same(secure.auth?.jwt?.key, { kind: 'jwks', url: 'https://auth.example.com/.well-known/jwks.json' }, 'the fallback of an unset variable')
  t.equal(secure.rateLimit?.redis?.url, 'redis://127.0.0.1:6379')
})
