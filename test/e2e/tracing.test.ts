import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { tracing } from '@opentelemetry/sdk-node'
import { type Test, test } from 'tap'
import { WebSocket } from 'ws'
import { tracingWanted } from '../../plugins/tracing.js'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'
import { connectClient, startCliGateway, startGateway, waitFor } from '../helper.js'

/**
 * Tracing end to end. Spans are captured with the OpenTelemetry SDK's in-memory exporter, registered as this
 * process's tracer provider (the gateway uses a provider already registered, as it would an embedding app's): a
 * client request's SERVER span is the child of the trace context the client sent in `params._meta` (or, over REST,
 * in its traceparent header), each upstream attempt a CLIENT span under it, and the upstream — the plain-node:http
 * fixture, which records what it was sent — gets the attempt's context in its HTTP headers and in `params._meta`.
 * Then the standalone gateway (the CLI, in a process of its own) started with only OTEL_* variables exports its
 * spans over OTLP to a local receiver (node:http, written for the test).
 */

const exporter = new tracing.InMemorySpanExporter()
trace.setGlobalTracerProvider(new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }))

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CLIENT_SPAN = '00f067aa0ba902b7'

const spansNamed = (name: string) => exporter.getFinishedSpans().filter(s => s.name === name)

test('a call is one trace: the client\'s context, the gateway\'s server span, its attempt, and the upstream told of it', async (t) => {
  exporter.reset()
  const upstream = await startPlainServer(t, 'a')
  const gateway = await startGateway(t, { tracing: { enabled: true }, servers: [{ id: 'a', url: upstream.url }] })
  const client = await connectClient(t, gateway.mcp)
  await client.callTool({ name: 'a__read', arguments: {}, _meta: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=1' } })

  const [server] = spansNamed('tools/call a__read')
  const [attempt] = spansNamed('tools/call read')
  t.ok(server !== undefined && attempt !== undefined, 'a server span and an attempt span')
  if (server === undefined || attempt === undefined) return
  t.equal(server.kind, SpanKind.SERVER)
  t.equal(server.spanContext().traceId, CLIENT_TRACE, 'the client\'s trace')
  t.equal(server.parentSpanContext?.spanId, CLIENT_SPAN, 'the client\'s span is the parent')
  t.equal(server.spanContext().traceState?.get('vendor'), '1', 'tracestate kept')
  t.match(server.attributes, {
    'mcp.method.name': 'tools/call',
    'gen_ai.tool.name': 'a__read',
    'gen_ai.operation.name': 'execute_tool',
    'mcp.session.id': String,
    'mcp.protocol.version': /^\d{4}-\d{2}-\d{2}$/,
    'jsonrpc.request.id': String,
    'network.transport': 'tcp'
  })
  t.equal(attempt.kind, SpanKind.CLIENT)
  t.equal(attempt.parentSpanContext?.spanId, server.spanContext().spanId, 'the attempt is the server span\'s child')
  t.equal(attempt.spanContext().traceId, CLIENT_TRACE)
  t.match(attempt.attributes, {
    'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'read', 'mcp_gateway.upstream': 'a', 'mcp_gateway.attempt': 1, 'server.address': '127.0.0.1', 'server.port': Number, 'mcp.protocol.version': String
  })
  t.notOk('error.type' in server.attributes, 'a success has no error.type')

  const sent = `00-${CLIENT_TRACE}-${attempt.spanContext().spanId}-01`
  t.equal(upstream.controls.lastCall?.headers.traceparent, sent, 'the upstream\'s HTTP request names the attempt as its parent')
  t.match(upstream.controls.lastCall?.params._meta, { traceparent: sent, tracestate: 'vendor=1' }, 'and so does params._meta')

  // A request that fails: its span says how.
  exporter.reset()
  await t.rejects(client.callTool({ name: 'nope', arguments: {} }))
  t.same(spansNamed('tools/call nope'), [], 'an unknown tool does not name a span: clients choose those names')
  const [failed] = spansNamed('tools/call')
  t.equal(failed?.status.code, SpanStatusCode.ERROR)
  t.match(failed?.attributes, { 'error.type': '-32602', 'rpc.response.status_code': '-32602', 'gen_ai.tool.name': 'nope' })
  t.match(failed?.status.message, /nope/)
  t.equal(failed?.parentSpanContext, undefined, 'no context sent: a trace of its own')

  // An upstream failing the call (HTTP 500): the attempt's span and the request's both fail.
  exporter.reset()
  upstream.controls.failCalls = true
  await t.rejects(client.callTool({ name: 'a__write', arguments: {} }))
  const [http500] = spansNamed('tools/call write')
  t.equal(http500?.status.code, SpanStatusCode.ERROR)
  t.equal(http500?.attributes['error.type'], '_OTHER', 'no JSON-RPC answer: the outcome, not a code the upstream never sent')
  t.notOk(http500 !== undefined && 'rpc.response.status_code' in http500.attributes)
  t.equal(spansNamed('tools/call a__write')[0]?.status.code, SpanStatusCode.ERROR)
  upstream.controls.failCalls = false

  const metrics = await (await fetch(gateway.base + '/metrics')).text()
  t.match(metrics, /mcp_server_operation_duration_seconds_count\{mcp_method_name="tools\/call",error_type=""\} 1/)
  t.match(metrics, /mcp_server_operation_duration_seconds_count\{mcp_method_name="tools\/call",error_type="-32602"\} 1/)
  t.match(metrics, /mcp_client_operation_duration_seconds_bucket\{mcp_method_name="tools\/call",error_type="",le="0.01"\}/)
  t.match(metrics, /mcp_client_operation_duration_seconds_count\{mcp_method_name="tools\/call",error_type="_OTHER"\} 1/, 'an HTTP 500 has no JSON-RPC code')
})

test('hostile input: huge method names and ids are clipped, unknown methods do not name spans; the WebSocket envelope is traced', async (t) => {
  exporter.reset()
  const upstream = await startPlainServer(t, 'a')
  const gateway = await startGateway(t, { tracing: { enabled: true }, servers: [{ id: 'a', url: upstream.url }] })
  const socket = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws')
  t.teardown(() => socket.close())
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })
  const replies: Array<Record<string, unknown>> = []
  socket.on('message', (data) => replies.push(JSON.parse(data.toString()) as Record<string, unknown>))
  const send = async (message: unknown) => {
    const before = replies.length
    socket.send(JSON.stringify(message))
    await waitFor('an answer', () => replies.length > before)
  }
  await send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  await send({ jsonrpc: '2.0', id: 'x'.repeat(100_000), method: 'm'.repeat(200_000) })
  const [odd] = spansNamed('_OTHER')
  t.ok(odd !== undefined, 'an unknown method: a span named _OTHER')
  t.ok(String(odd?.attributes['mcp.method.name']).length <= 128 && String(odd?.attributes['jsonrpc.request.id']).length <= 128, 'clipped')

  await send({ type: 'message', target: 'a', id: 7, data: { method: 'tools/call', params: { name: 'read', arguments: {}, _meta: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` } } } })
  const [envelope] = spansNamed('tools/call')
  const [attempt] = spansNamed('tools/call read')
  t.equal(envelope?.parentSpanContext?.spanId, CLIENT_SPAN, 'the envelope request: a server span under the client\'s context')
  t.equal(attempt?.parentSpanContext?.spanId, envelope?.spanContext().spanId, 'and its attempt under it')
  t.equal(upstream.controls.lastCall?.headers.traceparent, `00-${CLIENT_TRACE}-${attempt?.spanContext().spanId}-01`)
})

test('REST: the traceparent header is the parent; a malformed one is ignored', async (t) => {
  exporter.reset()
  const upstream = await startPlainServer(t, 'a')
  const gateway = await startGateway(t, { tracing: { enabled: true }, servers: [{ id: 'a', url: upstream.url }] })
  const call = (headers: Record<string, string>) => fetch(gateway.base + '/mcp/tools/call', {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'a__read', arguments: {} })
  }).then(res => res.json())
  await call({ traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` })
  const [server] = spansNamed('tools/call a__read')
  t.equal(server?.parentSpanContext?.spanId, CLIENT_SPAN)
  t.equal(server?.spanContext().traceId, CLIENT_TRACE)
  t.equal(spansNamed('tools/call read')[0]?.parentSpanContext?.spanId, server?.spanContext().spanId)

  exporter.reset()
  await call({ traceparent: 'not-a-traceparent' + 'x'.repeat(10_000) })
  const [fresh] = spansNamed('tools/call a__read')
  t.ok(fresh !== undefined && fresh.spanContext().traceId !== CLIENT_TRACE && fresh.parentSpanContext === undefined, 'a new trace')
})

test('tracing off (the default without OTEL_* variables): no spans, nothing added upstream', async (t) => {
  exporter.reset()
  const upstream = await startPlainServer(t, 'a')
  const gateway = await startGateway(t, { servers: [{ id: 'a', url: upstream.url }] })
  t.equal(gateway.app.mcpTracing, undefined)
  const client = await connectClient(t, gateway.mcp)
  await client.callTool({ name: 'a__read', arguments: {}, _meta: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` } })
  t.same(exporter.getFinishedSpans(), [])
  t.equal(upstream.controls.lastCall?.headers.traceparent, undefined)
  t.equal((upstream.controls.lastCall?.params._meta as Record<string, unknown>).traceparent, `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, 'the client\'s _meta passes as it is')
})

test('tracingWanted: what the OTEL_* variables ask for', async (t) => {
  t.equal(tracingWanted({}), false)
  t.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' }), true)
  t.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'none' }), false)
  t.equal(tracingWanted({ OTEL_TRACES_EXPORTER: ' ' }), false)
  t.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true)
  t.equal(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true)
  t.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }), false)
  t.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), false, 'none wins')
})

/** A local OTLP/HTTP receiver: records the JSON export requests it is sent. */
async function otlpReceiver (t: Test) {
  const received: Array<{ path: string, body: any }> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received }
}

test('standalone: OTEL_* variables alone start the SDK, and spans reach the OTLP endpoint', async (t) => {
  const receiver = await otlpReceiver(t)
  const upstream = await startPlainServer(t, 'a')
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-otel-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const gateway = await startCliGateway(t, dir, 'gateway', { servers: [{ id: 'a', url: upstream.url }] }, {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'gateway-under-test',
    OTEL_BSP_SCHEDULE_DELAY: '100'
  })
  const base = gateway.base
  await waitFor('upstream a', async () => ((await (await fetch(base + '/mcp/tools/list', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { tools: unknown[] }).tools.length > 0)
  const res = await fetch(base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'a__read', arguments: {} }) })
  t.equal(res.status, 200)
  const spans = () => receiver.received.filter(r => r.path === '/v1/traces')
    .flatMap(r => (r.body.resourceSpans as any[]).map(rs => ({ resource: rs.resource, spans: (rs.scopeSpans as any[]).flatMap(ss => ss.spans as any[]) })))
  const exported = await waitFor('the spans exported', () => {
    const all = spans()
    const names = all.flatMap(s => s.spans.map((span: { name: string }) => span.name))
    return names.includes('tools/call a__read') && names.includes('tools/call read') ? all : undefined
  }, 15_000)
  t.ok(exported.some(s => s.resource.attributes.some((a: any) => a.key === 'service.name' && a.value.stringValue === 'gateway-under-test')), 'OTEL_SERVICE_NAME names the resource')
  t.match(gateway.log(), /tracing: OpenTelemetry SDK started/)
  t.notOk(receiver.received.some(r => r.path !== '/v1/traces'), 'traces only: no metrics or logs exported')
})
