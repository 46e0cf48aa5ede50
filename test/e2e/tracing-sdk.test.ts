import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { trace } from '@opentelemetry/api'
import { type Test, test } from 'tap'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'
import { startGateway, waitFor } from '../helper.js'

/**
 * The SDK's life in one process: no tracer provider registered, so the first gateway with tracing on starts the
 * OpenTelemetry Node SDK from the OTEL_* variables (set here, in this test's own process) and exports to a local
 * OTLP/HTTP receiver (node:http, written for the test); a second gateway shares it; closing one leaves the other's
 * tracing alone; closing the last flushes and unregisters the provider. A collector that never answers does not
 * hold shutdown for longer than the flush's bound.
 */

process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json'
process.env.OTEL_BSP_SCHEDULE_DELAY = '50'

async function receiver (t: Test, answer = true) {
  const names: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (!answer) return // holds the export open
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string }> }> }> }
      for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) for (const span of ss.spans) names.push(span.name)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, names }
}

const call = (base: string) => fetch(base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'a__read', arguments: {} }) })
  .then(res => res.json())

test('two gateways share the SDK; closing one keeps the other tracing; the last one unregisters it', async (t) => {
  const collector = await receiver(t)
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url
  const upstream = await startPlainServer(t, 'a')
  const first = await startGateway(t, { tracing: { enabled: true }, servers: [{ id: 'a', url: upstream.url }] })
  const second = await startGateway(t, { tracing: { enabled: true }, servers: [{ id: 'a', url: upstream.url }] })
  await call(first.base)
  await waitFor('the first gateway\'s spans', () => collector.names.includes('tools/call a__read'))
  await first.app.close()
  collector.names.length = 0
  await call(second.base)
  await waitFor('the second gateway\'s spans, after the first closed', () => collector.names.includes('tools/call read'))
  t.match(upstream.controls.lastCall?.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'and it still propagates')
  await second.app.close()
  t.notOk(trace.getTracer('probe').startSpan('probe').isRecording(), 'the last one out unregistered the provider')
})

test('a collector that never answers does not hold shutdown', async (t) => {
  const collector = await receiver(t, false)
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url
  const upstream = await startPlainServer(t, 'a')
  const gateway = await startGateway(t, { tracing: { enabled: true }, servers: [{ id: 'a', url: upstream.url }] })
  await call(gateway.base)
  const started = Date.now()
  await gateway.app.close()
  const took = Date.now() - started
  t.ok(took < 8000, `closed in ${took} ms (the flush waits at most 2 s)`)
})
