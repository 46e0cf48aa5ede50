import { test } from 'tap'
import { Cancellation } from '../../src/cancellation.js'
import type { ClientChannel, ClientSession } from '../../src/client-session.js'
import { SessionStore } from '../../src/session-store.js'

/** A channel whose stream the test opens and closes. */
function channel (open = false): ClientChannel & { open: boolean } {
  return { transport: 'streamable-http', open, send () {}, close () {} }
}

function store (options: { max?: number, maxPerAddress?: number, maxPerPrincipal?: number, idleTimeout?: number } = {}) {
  const ended: Array<[string, string]> = []
  const sessions = new SessionStore({
    idleTimeout: options.idleTimeout ?? 60_000,
    max: options.max ?? 3,
    maxPerAddress: options.maxPerAddress ?? 0,
    maxPerPrincipal: options.maxPerPrincipal ?? 0,
    onEnd: (session, why) => { ended.push([session.id, why]) }
  })
  return { sessions, ended }
}

const initialized = (sessions: SessionStore, session: ClientSession) => { sessions.initialized(session); return session }

test('at the cap, a session that never completed initialization makes room first, oldest first', async (t) => {
  const { sessions, ended } = store({ max: 3 })
  const ready = initialized(sessions, sessions.create(channel(), { address: 'a' }))
  const half1 = sessions.create(channel(), { address: 'a' })
  const half2 = sessions.create(channel(), { address: 'a' })
  const newcomer = sessions.create(channel(), { address: 'b' })
  t.same(ended, [[half1.id, 'reclaimed']], 'the oldest half-open session went, not the initialized one')
  t.ok(half1.closed)
  t.equal(sessions.get(half1.id), undefined, 'its client gets 404 and initializes again')
  t.equal(sessions.size, 3)
  t.ok(sessions.get(ready.id) !== undefined && sessions.get(half2.id) !== undefined && sessions.get(newcomer.id) !== undefined)
})

test('then the least recently used idle session; busy sessions (a stream open, a call in flight) are kept', async (t) => {
  const { sessions, ended } = store({ max: 3 })
  const streaming = initialized(sessions, sessions.create(channel(true), { address: 'a' }))
  const calling = initialized(sessions, sessions.create(channel(), { address: 'a' }))
  calling.inFlight.add(1, new Cancellation())
  const idle = initialized(sessions, sessions.create(channel(), { address: 'a' }))
  const first = initialized(sessions, sessions.create(channel(true), { address: 'b' }))
  t.same(ended, [[idle.id, 'reclaimed']], 'only the idle one could go')
  t.throws(() => sessions.create(channel(), { address: 'c' }), { code: 'MCPGW_ERR_SESSION_LIMIT', statusCode: 503 },
    'when every session is busy, a newcomer is refused')
  t.notOk(first.closed)
  t.notOk(streaming.closed)
  t.notOk(calling.closed)
})

test('using a session makes it the most recently used', async (t) => {
  const { sessions, ended } = store({ max: 2 })
  const a = initialized(sessions, sessions.create(channel(), { address: 'x' }))
  const b = initialized(sessions, sessions.create(channel(), { address: 'x' }))
  sessions.touch(a)
  sessions.create(channel(), { address: 'x' })
  t.same(ended, [[b.id, 'reclaimed']], 'b was the least recently used')
})

test('the per-address cap reclaims that address\'s idle sessions and leaves other addresses alone', async (t) => {
  const { sessions, ended } = store({ max: 100, maxPerAddress: 2 })
  const other = initialized(sessions, sessions.create(channel(), { address: '10.0.0.2' }))
  const a1 = initialized(sessions, sessions.create(channel(), { address: '10.0.0.1' }))
  initialized(sessions, sessions.create(channel(true), { address: '10.0.0.1' }))
  initialized(sessions, sessions.create(channel(true), { address: '10.0.0.1' }))
  t.same(ended, [[a1.id, 'reclaimed']])
  t.throws(() => sessions.create(channel(), { address: '10.0.0.1' }), { code: 'MCPGW_ERR_ADDRESS_SESSION_LIMIT', statusCode: 429 },
    'both of its sessions are busy')
  t.doesNotThrow(() => sessions.create(channel(), { address: '10.0.0.3' }), 'another address is not limited by it')
  t.notOk(other.closed)
})

test('the per-principal cap reclaims that principal\'s idle sessions, counts API keys and JWT subjects apart, and gives back on end', async (t) => {
  const { sessions, ended } = store({ max: 100, maxPerPrincipal: 2 })
  const alice = { kind: 'api-key' as const, id: 'alice', roles: [], scopes: [] }
  const aliceJwt = { kind: 'jwt' as const, id: 'alice', roles: [], scopes: [] }
  const idle = initialized(sessions, sessions.create(channel(), { address: 'a', principal: alice }))
  initialized(sessions, sessions.create(channel(true), { address: 'b', principal: alice }))
  initialized(sessions, sessions.create(channel(true), { address: 'c', principal: alice }))
  t.same(ended, [[idle.id, 'reclaimed']], 'from any address')
  t.throws(() => sessions.create(channel(), { address: 'd', principal: alice }), { code: 'MCPGW_ERR_PRINCIPAL_SESSION_LIMIT', statusCode: 429 },
    'both of its sessions are busy')
  t.doesNotThrow(() => sessions.create(channel(), { address: 'd', principal: aliceJwt }), 'a JWT subject of the same name is another principal')
  t.doesNotThrow(() => { for (let i = 0; i < 5; i++) sessions.create(channel(), { address: 'e' }) }, 'no principal (no auth): not limited by it')
  const [busy] = [...sessions.all()].filter(s => s.principal === alice)
  sessions.delete((busy as ClientSession).id)
  t.doesNotThrow(() => sessions.create(channel(), { address: 'd', principal: alice }), 'an ended session gives its place back')
})

test('at the cap, a principal\'s newcomer makes room among its own idle sessions before anyone else\'s', async (t) => {
  const { sessions, ended } = store({ max: 3 })
  const bob = { kind: 'api-key' as const, id: 'bob', roles: [], scopes: [] }
  const alice = { kind: 'api-key' as const, id: 'alice', roles: [], scopes: [] }
  const bobOldest = initialized(sessions, sessions.create(channel(), { address: 'x', principal: bob }))
  const aliceIdle = initialized(sessions, sessions.create(channel(), { address: 'x', principal: alice }))
  initialized(sessions, sessions.create(channel(), { address: 'x', principal: bob }))
  initialized(sessions, sessions.create(channel(), { address: 'x', principal: alice }))
  t.same(ended, [[aliceIdle.id, 'reclaimed']], 'alice\'s own idle session went, not bob\'s older one')
  t.notOk(bobOldest.closed)
  const carol = { kind: 'api-key' as const, id: 'carol', roles: [], scopes: [] }
  initialized(sessions, sessions.create(channel(), { address: 'x', principal: carol }))
  t.same(ended.at(-1), [bobOldest.id, 'reclaimed'], 'a principal with nothing of its own to give: the least recently used idle one')
})

test('the sweeper ends sessions idle for longer than idleTimeout, never busy ones', async (t) => {
  const { sessions, ended } = store({ max: 10, idleTimeout: 1000 })
  const idle = sessions.create(channel(), { address: 'a' })
  const open = channel(true)
  const streaming = sessions.create(open, { address: 'a' })
  const recent = sessions.create(channel(), { address: 'a' })
  const now = Date.now()
  idle.lastSeen = now - 5000
  streaming.lastSeen = now - 5000
  recent.lastSeen = now
  t.equal(sessions.sweep(now), 1)
  t.same(ended, [[idle.id, 'expired']])
  open.open = false
  t.equal(sessions.sweep(now), 1, 'a session whose stream has gone expires')
  t.same(ended.at(-1), [streaming.id, 'expired'])
  sessions.closeAll()
  t.equal(sessions.size, 0)
  t.same(ended.at(-1), [recent.id, 'closed'])
})

test('a session record is a plain value that survives JSON', async (t) => {
  const { sessions } = store()
  const session = sessions.create(channel(), { address: '127.0.0.1' })
  session.record.protocolVersion = '2025-06-18'
  session.record.capabilities = { sampling: {} }
  session.record.logLevel = 'info'
  session.record.subscriptions['file:///a'] = 'fs'
  session.record.picks.fs = 'fs-2'
  const copy = JSON.parse(JSON.stringify(session.record))
  t.same(copy, {
    id: session.id,
    createdAt: session.record.createdAt,
    protocolVersion: '2025-06-18',
    capabilities: { sampling: {} },
    principal: null,
    logLevel: 'info',
    subscriptions: { 'file:///a': 'fs' },
    picks: { fs: 'fs-2' }
  })
  t.ok(session.subscribedOn('fs'))
  t.notOk(session.subscribedOn('github'))
})
