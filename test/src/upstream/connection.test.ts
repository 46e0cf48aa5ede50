import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type Test, test } from 'tap'
import { DEFAULT_UPSTREAM, normalizeServer } from '../../../src/config/normalize.js'
import { silentLogger } from '../../../src/logger.js'
import { type ConnectionObserver, UpstreamConnection, type UpstreamState } from '../../../src/upstream/connection.js'
import { StdioSession } from '../../../src/upstream/stdio.js'
import { waitFor } from '../../helper.js'

/** Handlers for client sessions these tests open (nothing is expected from the server on them). */
const noHandlers = { onNotification () {}, onRequest: async () => ({}) }

const STDIO_SERVER = fileURLToPath(new URL('../../fixtures/stdio-server.mjs', import.meta.url))
const TIMEOUT = 10_000
const FIXTURE_TOOLS = ['echo', 'env', 'pid', 'add_tool', 'storm', 'lists', 'crash', 'hang']

/** Records what the connection reports. */
class RecordingObserver implements ConnectionObserver {
  readonly states: Array<[UpstreamState, string | undefined]> = []
  readonly listings: string[][] = []
  readonly changes: string[] = []
  state (connection: UpstreamConnection) { this.states.push([connection.state, connection.reason]) }
  listChanged (_connection: UpstreamConnection, kind: string) { this.changes.push(kind) }
  listing (connection: UpstreamConnection) { this.listings.push((connection.listing?.tools ?? []).map(tool => tool.name)) }
}

function connection (t: Test, options: { enabled?: boolean, command?: string, args?: string[] } = {}) {
  const observer = new RecordingObserver()
  const conn = new UpstreamConnection(normalizeServer({
    id: 'fixture',
    command: options.command ?? process.execPath,
    args: options.args ?? [STDIO_SERVER],
    ...(options.enabled !== undefined ? { enabled: options.enabled } : {})
  }, DEFAULT_UPSTREAM), {
    defaults: { ...DEFAULT_UPSTREAM, reconnectMin: 50, reconnectMax: 200 },
    clientInfo: { name: 'connection-test', version: '1.0.0' },
    log: silentLogger,
    observer,
    stopGrace: 500
  })
  t.teardown(() => conn.close())
  return { conn, observer }
}

function callTool (conn: UpstreamConnection, name: string, args: Record<string, unknown> = {}) {
  return (conn.control as StdioSession).request('tools/call', { name, arguments: args }, { timeout: TIMEOUT })
}

test('start() brings the upstream up with its listing', async (t) => {
  const { conn, observer } = connection(t)
  await conn.start()
  t.equal(conn.state, 'up')
  t.equal(conn.reason, undefined)
  t.same(observer.states, [['connecting', undefined], ['up', undefined]])
  t.same(observer.listings, [FIXTURE_TOOLS])
  t.match(conn.listing, {
    resources: [],
    resourceTemplates: [],
    prompts: [],
    capabilities: { tools: { listChanged: true } },
    serverInfo: { name: 'stdio-fixture' },
    protocolVersion: '2025-11-25'
  })
  t.type(conn.pid, 'number')
  t.ok(conn.shared, 'a stdio server is one session shared by every client')
  t.equal(await conn.openSession({ capabilities: {}, clientInfo: { name: 'client', version: '1' } }, noHandlers), conn.control)
})

test('a crashed process goes down with the reason and comes back up with a new pid', async (t) => {
  const { conn, observer } = connection(t)
  await conn.start()
  const firstPid = conn.pid
  const err = await callTool(conn, 'crash').catch((e: unknown) => e)
  t.match(err, { code: 'MCPGW_ERR_UPSTREAM_CLOSED' })

  await waitFor('the upstream back up', () => conn.state === 'up' && conn.pid !== firstPid)
  t.type(conn.pid, 'number')
  t.not(conn.pid, firstPid, 'a new process')
  t.match(observer.states.slice(2), [
    ['down', /^process exited with code 3 \(stderr: fatal: asked to crash\)$/],
    ['connecting', /exited with code 3/],
    ['up', undefined]
  ])
  t.equal(observer.listings.length, 2, 'the new process is listed')
  t.same(await callTool(conn, 'echo', { text: 'again' }), { content: [{ type: 'text', text: 'again' }] })
})

test('tools/list_changed from the server re-lists and tells the observer', async (t) => {
  const { conn, observer } = connection(t)
  await conn.start()
  t.same(await callTool(conn, 'add_tool', { name: 'added_later' }), { content: [{ type: 'text', text: 'added' }] })
  await waitFor('the new listing', () => observer.listings.length === 2)
  t.same(observer.listings[1], [...FIXTURE_TOOLS, 'added_later'])
  t.same(conn.listing?.tools.map(tool => tool.name), [...FIXTURE_TOOLS, 'added_later'])
  t.same(observer.changes, ['tools'], 'told of the notification itself too (the result cache listens)')
  t.equal(conn.state, 'up')
})

test('regression: a storm of list_changed costs at most two listings, not one per notification', async (t) => {
  const { conn } = connection(t)
  await conn.start()
  const lists = async () => Number(((await callTool(conn, 'lists')) as { content: Array<{ text: string }> }).content[0]?.text)
  const before = await lists()
  await callTool(conn, 'storm', { count: 500 })
  // The refresh the storm queued reads tools/list after 'lists' answers (the fixture answers in order): wait for it.
  await waitFor('the storm to be listed', async () => (await lists()) > before)
  await new Promise(resolve => setTimeout(resolve, 300))
  const after = await lists()
  t.ok(after - before >= 1 && after - before <= 2, `500 notifications, ${after - before} listings`)
  t.equal(conn.state, 'up')
})

test('close() stops the upstream for good', async (t) => {
  const { conn, observer } = connection(t)
  await conn.start()
  const session = conn.control as StdioSession
  await conn.close()
  t.equal(conn.state, 'stopped')
  t.equal(conn.control, undefined)
  t.equal(conn.listing, undefined)
  t.equal(conn.pid, undefined)
  t.equal(session.child.exitCode, 0, 'the process ended through stdin close')
  t.same(observer.states.at(-1), ['stopped', 'stopped'])
  await t.rejects(conn.openSession({ capabilities: {}, clientInfo: { name: 'client', version: '1' } }, noHandlers),
    { code: 'MCPGW_ERR_UPSTREAM_UNAVAILABLE' })
})

test('close() while waiting to reconnect cancels the reconnect', async (t) => {
  const { conn, observer } = connection(t)
  await conn.start()
  await callTool(conn, 'crash').catch(() => {})
  await waitFor('the upstream down', () => conn.state === 'down')
  await conn.close()
  const seen = observer.states.length
  // A reconnect would come within reconnectMax (200ms); its absence needs a quiet period longer than that.
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(conn.state, 'stopped')
  t.same(observer.states.slice(seen - 1), [['stopped', 'stopped']], 'no reconnect after close')
  t.equal(conn.pid, undefined)
})

/** Live processes whose command line includes `marker`. */
function processesWith (marker: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(marker)) found.push(Number(entry))
    } catch {}
  }
  return found
}

test('close() while connecting stops the process it was starting', async (t) => {
  const marker = `--marker=${randomUUID()}` // ignored by the fixture; finds its process in /proc
  const { conn, observer } = connection(t, { args: [STDIO_SERVER, marker] })
  const starting = conn.start()
  t.equal(conn.state, 'connecting')
  await conn.close()
  await starting
  t.equal(conn.state, 'stopped')
  t.same(observer.states, [['connecting', undefined], ['stopped', 'stopped']], 'it never came up')
  t.equal(conn.control, undefined)
  await waitFor('the process to end', () => processesWith(marker).length === 0)
  t.same(processesWith(marker), [])
})

test('a command that does not exist goes down with the reason and keeps retrying', async (t) => {
  const { conn, observer } = connection(t, { command: 'mcpgw-test-no-such-command', args: [] })
  await conn.start()
  t.equal(conn.state, 'down')
  t.match(conn.reason, /"mcpgw-test-no-such-command": command not found/)
  await waitFor('a second attempt', () => observer.states.filter(([state]) => state === 'down').length >= 2)
  t.pass('it tried again with backoff')
})

test('a disabled upstream is disabled and never spawns', async (t) => {
  const { conn, observer } = connection(t, { enabled: false })
  await conn.start()
  t.equal(conn.state, 'disabled')
  t.same(observer.states, [['disabled', 'disabled (enabled: false)']], 'no connecting attempt was made')
  t.equal(conn.control, undefined)
  t.equal(conn.pid, undefined)
  await t.rejects(conn.openSession({ capabilities: {}, clientInfo: { name: 'client', version: '1' } }, noHandlers),
    { code: 'MCPGW_ERR_UPSTREAM_UNAVAILABLE', message: /disabled/ })
})
