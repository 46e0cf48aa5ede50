import { createServer } from 'node:http'
import { test } from 'tap'
import { buildApp } from '../../src/app.js'
import { resolveConfig } from '../../src/config/load.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'
import { waitFor } from '../helper.js'

/**
 * Start-up never fails because of an upstream: one that accepts connections and never answers initialize (a
 * hand-written hanging server — no published server does that on purpose) is reported down while the others
 * serve, even when its connect timeout is longer than Fastify's plugin timeout.
 */

test('regression: an upstream that never answers initialize does not make start-up fail', async (t) => {
  const hanging = createServer(() => {}) // takes the request, never answers
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { hanging.closeAllConnections(); hanging.close() })
  const healthy = await startHttpFixture(t, { name: 'ok', tools: [{ name: 'echo' }] })
  const app = await buildApp({
    config: resolveConfig({
      metrics: { defaultMetrics: false },
      upstreamDefaults: { connectTimeout: 2500 },
      startupWait: 60_000,
      servers: [
        { id: 'hangs', url: `http://127.0.0.1:${(hanging.address() as { port: number }).port}/mcp` },
        { id: 'ok', url: healthy.url }
      ]
    }, { envOverrides: false, source: 'test config' })
  }, { logger: false, pluginTimeout: 1500 })
  t.teardown(() => app.close())
  const started = Date.now()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.ok(Date.now() - started < 1500, 'ready before the plugin timeout, whatever startupWait says')
  t.equal(app.mcpProxy.catalog.tool('ok__echo')?.service, 'ok', 'the healthy upstream serves')
  const hangs = () => app.mcpProxy.upstreams().find(u => u.id === 'hangs')
  t.equal(hangs()?.state, 'connecting')
  await waitFor('the hanging upstream to be reported down', () => hangs()?.state === 'down')
  t.match(hangs()?.reason, /did not answer initialize within \d+ms/)
})
