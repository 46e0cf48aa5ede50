import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { test } from 'tap'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { type ConformanceServer, startConformanceServer } from '../fixtures/conformance-server.js'

/**
 * Upstreams whose one session every client shares (`sessionMode: "shared"`, as for a stdio process): a URI is
 * subscribed there once for all its subscribers, unsubscribed when the last one leaves, moved to another replica when
 * its own fails, and subscribed again when the upstream comes back. The upstream is the conformance fixture (it
 * takes subscriptions and counts them per session); clients are the official SDK's.
 */

const URI = 'test://watched-resource'

function updates (client: Client): string[] {
  const seen: string[] = []
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => { seen.push(n.params.uri) })
  return seen
}

test('a URI is subscribed once on a shared session for all its subscribers, and let go with the last', async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [{ id: 'conf', url: upstream.url, sessionMode: 'shared' }] })
  const alice = await connectClient(t, gateway.mcp, { sampling: {} })
  const bob = await connectClient(t, gateway.mcp)
  const seen = { alice: updates(alice), bob: updates(bob) }
  await alice.subscribeResource({ uri: URI })
  await bob.subscribeResource({ uri: URI })
  t.equal(upstream.openSessions, 1, 'no client got a session of its own, not even one that declared sampling')
  t.equal(upstream.subscribers(URI), 1, 'subscribed once')
  await upstream.updateResource(URI)
  await waitFor('both updates', () => seen.alice.length === 1 && seen.bob.length === 1)
  await alice.unsubscribeResource({ uri: URI })
  t.equal(upstream.subscribers(URI), 1, 'bob still listens')
  await upstream.updateResource(URI)
  await waitFor('bob\'s second update', () => seen.bob.length === 2)
  t.equal(seen.alice.length, 1, 'alice no longer gets them')
  await bob.unsubscribeResource({ uri: URI })
  await waitFor('the upstream to be unsubscribed', () => upstream.subscribers(URI) === 0)
})

test('a shared subscription moves to another replica when its own fails, and back when the upstream returns', async (t) => {
  const one = await startConformanceServer(t)
  const two = await startConformanceServer(t)
  const gateway = await startGateway(t, {
    prefixMode: 'never',
    upstreamDefaults: { reconnectMin: 100, reconnectMax: 200, healthInterval: 200 },
    servers: [
      { id: 'conf-1', service: 'conf', url: one.url, sessionMode: 'shared' },
      { id: 'conf-2', service: 'conf', url: two.url, sessionMode: 'shared' }
    ]
  })
  await waitFor('both replicas', () => gateway.app.mcpHealth.isUp('conf-1') && gateway.app.mcpHealth.isUp('conf-2'))
  const client = await connectClient(t, gateway.mcp)
  const seen = updates(client)
  await client.subscribeResource({ uri: URI })
  const [holder, other]: ConformanceServer[] = one.subscribers(URI) === 1 ? [one, two] : [two, one]
  await holder.stop()
  await waitFor('the subscription to move', () => other.subscribers(URI) === 1)
  await other.updateResource(URI)
  await waitFor('an update from the replica that took it over', () => seen.length === 1)
})

test('when a shared-only upstream comes back, what its clients subscribed is subscribed again', async (t) => {
  const first = await startConformanceServer(t)
  const port = first.port
  const gateway = await startGateway(t, {
    prefixMode: 'never',
    upstreamDefaults: { reconnectMin: 100, reconnectMax: 200, healthInterval: 200 },
    servers: [{ id: 'conf', url: first.url, sessionMode: 'shared' }]
  })
  const client = await connectClient(t, gateway.mcp)
  const seen = updates(client)
  await client.subscribeResource({ uri: URI })
  await first.stop()
  await waitFor('the upstream to be down', () => gateway.app.mcpHealth.get('conf')?.state === 'down')
  const again = await startConformanceServer(t, { port })
  await waitFor('the subscription to be made again on the new session', () => again.subscribers(URI) === 1, 10_000)
  await again.updateResource(URI)
  await waitFor('the update', () => seen.length === 1)
})

test('regression: subscriptions are bounded per session and in all (limits.maxSubscriptions, maxSubscriptionsTotal) and URIs in length', async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, {
    prefixMode: 'never',
    limits: { maxSubscriptions: 3, maxSubscriptionsTotal: 5 },
    servers: [{ id: 'conf', url: upstream.url, sessionMode: 'shared' }]
  })
  const alice = await connectClient(t, gateway.mcp)
  const bob = await connectClient(t, gateway.mcp)
  const subscribe = (client: Client, uri: string) => client.subscribeResource({ uri }).then(() => 'ok', (err: Error) => err.message)
  t.same(await Promise.all(['test://a', 'test://b', 'test://a', 'test://c'].map(uri => subscribe(alice, uri))), ['ok', 'ok', 'ok', 'ok'],
    'the same URI twice at once counts once')
  t.match(await subscribe(alice, 'test://d'), /Too many subscriptions: this session holds its maximum of 3 \(limits\.maxSubscriptions\)/)
  t.same([await subscribe(bob, 'test://a'), await subscribe(bob, 'test://e')], ['ok', 'ok'])
  t.match(await subscribe(bob, 'test://f'), /the gateway holds its maximum of 5 over all sessions \(limits\.maxSubscriptionsTotal\)/)
  await alice.unsubscribeResource({ uri: 'test://b' })
  t.equal(await subscribe(bob, 'test://f'), 'ok', 'an unsubscribe makes room')
  await (alice.transport as StreamableHTTPClientTransport).terminateSession()
  await waitFor('alice\'s session to end', () => gateway.app.mcpProxy.sessions.size === 1)
  const carol = await connectClient(t, gateway.mcp)
  t.same([await subscribe(carol, 'test://g'), await subscribe(carol, 'test://h')], ['ok', 'ok'], 'an ended session gives back what it held')
  t.equal(upstream.subscribers('test://c'), 0, 'and its subscriptions are let go upstream')
  t.match(await subscribe(carol, 'test://' + 'x'.repeat(5000)), /URI is longer than 4096 characters/)
})
