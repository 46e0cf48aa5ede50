import { fileURLToPath } from 'node:url'
import { type Test, test } from 'tap'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../../src/config/normalize.js'
import type { UpstreamDefinition } from '../../../src/config/types.js'
import type { Logger } from '../../../src/logger.js'
import { StdioSession } from '../../../src/upstream/stdio.js'
import { groupMembers, waitFor } from '../../helper.js'

const STDIO_SERVER = fileURLToPath(new URL('../../fixtures/stdio-server.mjs', import.meta.url))
const IDENTITY = { capabilities: {}, clientInfo: { name: 'stdio-test', version: '1.0.0' } }
const TIMEOUT = 10_000

interface LogEntry { level: string, obj: Record<string, unknown>, msg: string | undefined }

/** Keeps every entry, so tests can read what the session logged. */
class CapturingLogger implements Logger {
  readonly entries: LogEntry[] = []
  error (obj: object, msg?: string) { this.entries.push({ level: 'error', obj: obj as Record<string, unknown>, msg }) }
  warn (obj: object, msg?: string) { this.entries.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }) }
  info (obj: object, msg?: string) { this.entries.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) }
  debug (obj: object, msg?: string) { this.entries.push({ level: 'debug', obj: obj as Record<string, unknown>, msg }) }
  child () { return this }
}

function definition (flags: string[], extra: { command?: string, env?: Record<string, string> } = {}): UpstreamDefinition {
  return normalizeServer({
    id: 'stdio',
    command: extra.command ?? process.execPath,
    args: extra.command === undefined ? [STDIO_SERVER, ...flags] : flags,
    ...(extra.env !== undefined ? { env: extra.env } : {})
  }, DEFAULT_UPSTREAM)
}

function start (t: Test, flags: string[] = [], options: { env?: Record<string, string>, command?: string, stopGrace?: number } = {}) {
  const log = new CapturingLogger()
  const session = new StdioSession(definition(flags, options), log, { stopGrace: options.stopGrace ?? 2000 })
  t.teardown(() => session.close())
  return { session, log }
}

function callTool (session: StdioSession, name: string, args: Record<string, unknown> = {}) {
  return session.request('tools/call', { name, arguments: args }, { timeout: TIMEOUT }) as Promise<Record<string, unknown>>
}

test('initialize and a tools/call round trip', async (t) => {
  const { session } = start(t)
  const init = await session.initialize(IDENTITY, TIMEOUT)
  t.match(init, { protocolVersion: '2025-11-25', serverInfo: { name: 'stdio-fixture' }, capabilities: { tools: {} } })
  t.equal(session.protocolVersion, '2025-11-25')
  t.same(await callTool(session, 'echo', { text: 'hello' }), { content: [{ type: 'text', text: 'hello' }] })
  const err = await session.request('tools/call', { name: 'nope' }, { timeout: TIMEOUT }).catch((e: unknown) => e)
  t.match(err, { code: 'MCPGW_ERR_UPSTREAM_RPC', rpcError: { code: -32602, message: 'Unknown tool: nope' } })
})

test('stderr lines reach the logger', async (t) => {
  const { session, log } = start(t, ['--stderr-lines'])
  await session.initialize(IDENTITY, TIMEOUT)
  await waitFor('both stderr lines', () => log.entries.filter(e => e.msg === 'upstream stderr').length >= 2)
  t.same(log.entries.filter(e => e.msg === 'upstream stderr').map(e => [e.level, e.obj.stderr]),
    [['info', 'fixture starting'], ['info', 'fixture ready']])
})

test('a stdout line that is not JSON is logged and ignored; the next JSON line still works', async (t) => {
  const { session, log } = start(t, ['--junk-stdout'])
  const init = await session.initialize(IDENTITY, TIMEOUT)
  t.equal(init.serverInfo.name, 'stdio-fixture', 'the answer after the junk line is read')
  t.match(log.entries, [{ level: 'warn', obj: { line: 'this line is not JSON-RPC' }, msg: /not JSON-RPC/ }])
  t.same(await callTool(session, 'echo', { text: 'still fine' }), { content: [{ type: 'text', text: 'still fine' }] })
})

test('the child sees only the inherited safe variables and its own env', async (t) => {
  const previous = process.env.MCPGW_TEST_SECRET
  process.env.MCPGW_TEST_SECRET = 'hunter2'
  t.teardown(() => {
    if (previous === undefined) delete process.env.MCPGW_TEST_SECRET
    else process.env.MCPGW_TEST_SECRET = previous
  })
  const { session } = start(t, [], { env: { MCPGW_TEST_VISIBLE: 'yes' } })
  await session.initialize(IDENTITY, TIMEOUT)
  const result = await callTool(session, 'env')
  const env = (result.structuredContent as { env: Record<string, string> }).env
  t.equal(env.MCPGW_TEST_VISIBLE, 'yes', 'a variable from env is seen')
  t.notOk('MCPGW_TEST_SECRET' in env, 'the gateway\'s own environment does not leak')
  t.equal(env.PATH, process.env.PATH, 'PATH is inherited')
  const allowed = new Set(['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ',
    'NODE_EXTRA_CA_CERTS', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy',
    'MCPGW_TEST_VISIBLE'])
  // tap's process-info hook wraps spawn and adds NODE_OPTIONS and _TAPJS_* to every child to track coverage.
  const added = Object.keys(env).filter(k => !allowed.has(k) && k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS_'))
  t.same(added, [], 'nothing else is passed')
})

test('close() ends a well-behaved server by closing stdin', async (t) => {
  const { session } = start(t, [], { stopGrace: 10_000 })
  await session.initialize(IDENTITY, TIMEOUT)
  const inFlight = callTool(session, 'hang').catch((e: unknown) => e)
  await session.close()
  t.match(await inFlight, { code: 'MCPGW_ERR_UPSTREAM_CLOSED', message: /stopped by the gateway/ }, 'the call in flight fails')
  t.match(await session.request('ping', undefined, { timeout: TIMEOUT }).catch((e: unknown) => e),
    { code: 'MCPGW_ERR_UPSTREAM_CLOSED', sent: false }, 'a later call is never sent')
  t.equal(session.child.exitCode, 0)
  t.equal(session.child.signalCode, null)
  t.equal(await session.exited, 'process exited with code 0')
  t.ok(session.closed)
})

test('close() ends a server that ignores stdin close with SIGTERM', async (t) => {
  const { session } = start(t, ['--ignore-stdin-close'], { stopGrace: 300 })
  await session.initialize(IDENTITY, TIMEOUT)
  await session.close()
  t.equal(session.child.signalCode, 'SIGTERM')
  t.equal(await session.exited, 'process was killed by SIGTERM')
})

test('close() ends a server that also ignores SIGTERM with SIGKILL', async (t) => {
  const { session, log } = start(t, ['--ignore-stdin-close', '--ignore-sigterm'], { stopGrace: 300 })
  await session.initialize(IDENTITY, TIMEOUT)
  await session.close()
  t.equal(session.child.signalCode, 'SIGKILL')
  t.equal(await session.exited, 'process was killed by SIGKILL')
  t.ok(log.entries.some(e => e.obj.stderr === 'ignoring SIGTERM'), 'SIGTERM was tried first')
})

test('close() leaves no process of the child\'s process group behind', async (t) => {
  const { session } = start(t, ['--spawn-child'])
  await session.initialize(IDENTITY, TIMEOUT)
  const pid = session.pid as number
  const { grandchild } = (await callTool(session, 'pid')).structuredContent as { pid: number, grandchild: number }
  t.ok(groupMembers(pid).includes(grandchild), 'the grandchild runs in the server\'s process group')
  await session.close()
  t.equal(session.child.exitCode, 0, 'the server itself exited on stdin close')
  await waitFor('the process group to empty', () => groupMembers(pid).length === 0)
  t.same(groupMembers(pid), [])
})

test('a command that does not exist: exited names it, calls fail with MCPGW_ERR_UPSTREAM_CLOSED', async (t) => {
  const { session } = start(t, [], { command: 'mcpgw-test-no-such-command' })
  const call = session.request('tools/list', undefined, { timeout: TIMEOUT }).catch((e: unknown) => e)
  const reason = await session.exited
  t.match(reason, /"mcpgw-test-no-such-command": command not found/)
  t.match(await call, { code: 'MCPGW_ERR_UPSTREAM_CLOSED', message: /command not found/ }, 'the pending call')
  t.match(await session.request('ping', undefined, { timeout: TIMEOUT }).catch((e: unknown) => e),
    { code: 'MCPGW_ERR_UPSTREAM_CLOSED', sent: false }, 'a later call')
  await session.close()
})

test('a crash fails the call in flight with the exit code and the stderr tail', async (t) => {
  const { session } = start(t, ['--stderr-lines', '--exit-after-init'])
  await session.initialize(IDENTITY, TIMEOUT)
  const err = await callTool(session, 'echo', { text: 'never answered' }).catch((e: unknown) => e)
  t.match(err, {
    code: 'MCPGW_ERR_UPSTREAM_CLOSED',
    message: /exited with code 3 \(stderr: fixture starting \| fixture ready \| fatal: simulated crash after initialize\)/
  })
  t.match(await session.exited, /^process exited with code 3/)
})
