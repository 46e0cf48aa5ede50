import { test } from 'tap'
import { GatewayConfigFile, ServerConfig } from '../../../schemas/config.js'
import { fieldPath, schemaProblems } from '../../../src/config/validate.js'

const LOG_LEVELS = 'must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"'

test('fieldPath turns a JSON pointer into a readable field path', async (t) => {
  t.equal(fieldPath('', ''), '')
  t.equal(fieldPath('', '/port'), 'port')
  t.equal(fieldPath('', '/servers/0/headers/x-key'), 'servers[0].headers.x-key')
  t.equal(fieldPath('', '/mcpServers/github/tools/allow/2'), 'mcpServers.github.tools.allow[2]')
  t.equal(fieldPath('server', '/url'), 'server.url', 'a root prefixes the path')
  t.equal(fieldPath('server', ''), 'server')
  t.equal(fieldPath('', '/mcpServers/my server'), 'mcpServers["my server"]', 'odd keys are quoted')
  t.equal(fieldPath('', '/mcpServers/1st'), 'mcpServers["1st"]')
  t.equal(fieldPath('', '/headers/a~1b~0c'), 'headers["a/b~c"]', '~1 and ~0 are unescaped')
})

test('a valid value has no problems', async (t) => {
  t.same(schemaProblems(GatewayConfigFile, {}), [])
  t.same(schemaProblems(GatewayConfigFile, {
    port: 3000,
    logLevel: 'debug',
    servers: [{ id: 'a', url: 'http://127.0.0.1:1/', headers: { 'x-key': 'v' }, tools: { allow: ['*'] } }],
    mcpServers: { b: { command: 'x', type: 'stdio', disabled: false } }
  }), [])
})

test('problems name the field, with the root given', async (t) => {
  t.same(schemaProblems(ServerConfig, { id: 'a', url: 'ftp://x' }, 'server'), ['server.url: must match pattern "^(https?|wss?)://"'])
  t.same(schemaProblems(ServerConfig, { id: 'a', url: 'http://x', weight: 2000 }, 'servers[3]'), ['servers[3].weight: must be <= 1000'])
  t.same(schemaProblems(GatewayConfigFile, { port: 1.5 }), ['port: must be integer'])
  t.same(schemaProblems(GatewayConfigFile, { servers: {} }), ['servers: must be array'])
})

test('a missing required property is named', async (t) => {
  const problems = schemaProblems(ServerConfig, { url: 'http://x' }, 'server')
  t.equal(problems.length, 1)
  t.match(problems[0], /^server: .*\bid\b/)
})

test('unknown keys are named with the object that holds them', async (t) => {
  t.same(schemaProblems(GatewayConfigFile, { colour: 'red' }), ['(root): unknown key "colour"'])
  t.same(schemaProblems(GatewayConfigFile, { mcpServers: { github: { command: 'x', autoApprove: [] } } }),
    ['mcpServers.github: unknown key "autoApprove"'])
  t.same(schemaProblems(GatewayConfigFile, { servers: [{ id: 'a', url: 'http://x' }, { id: 'b', url: 'http://x', tools: { only: [] } }] }),
    ['servers[1].tools: unknown key "only"'])
  t.same(schemaProblems(GatewayConfigFile, { mcpServers: { 'my server': { command: 'x', extra: 1 } } }),
    ['mcpServers["my server"]: unknown key "extra"'])
})

test('header names are checked', async (t) => {
  const problems = schemaProblems(ServerConfig, { id: 'a', url: 'http://x', headers: { 'bad header': 'v' } }, 'server')
  t.equal(problems.length, 1)
  t.match(problems[0], /^server\.headers.*bad header/)
})

test('enum problems list the allowed values once', async (t) => {
  t.same(schemaProblems(GatewayConfigFile, { logLevel: 'loud' }), [`logLevel: ${LOG_LEVELS}`])
  t.same(schemaProblems(ServerConfig, { id: 'a', url: 'http://x', transport: 'grpc' }, 'server'),
    ['server.transport: must be one of "streamable-http", "sse", "websocket", "stdio"'])
})

test('every problem is reported, however many there are', async (t) => {
  const problems = schemaProblems(GatewayConfigFile, {
    logLevel: 'loud',
    prefixMode: 'sometimes',
    port: 'x',
    mcpServers: { foo: { command: 'x', autoApprove: [] } },
    servers: [{ id: 'a', url: 'ftp://x', transport: 'grpc' }]
  })
  t.same([...problems].sort(), [
    `logLevel: ${LOG_LEVELS}`,
    'mcpServers.foo: unknown key "autoApprove"',
    'port: must be integer',
    'prefixMode: must be one of "always", "conditional", "never"',
    'servers[0].transport: must be one of "streamable-http", "sse", "websocket", "stdio"',
    'servers[0].url: must match pattern "^(https?|wss?)://"'
  ])
})

test('many unknown keys are all reported and never hide another problem', async (t) => {
  const junk = Object.fromEntries('abcdefghij'.split('').map(k => [k, 1]))
  const problems = schemaProblems(GatewayConfigFile, { ...junk, port: 'oops' })
  t.equal(problems.length, 11)
  t.ok(problems.includes('port: must be integer'))
  for (const key of Object.keys(junk)) t.ok(problems.includes(`(root): unknown key "${key}"`), key)
  t.same(schemaProblems(ServerConfig, { id: 'a', url: 'http://x', ...junk }, 'server').length, 10)
})
