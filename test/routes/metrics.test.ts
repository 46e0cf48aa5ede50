import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { test } from 'tap'
import { connectClient, startGateway } from '../helper.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * /metrics is Prometheus text that a real parser accepts, and it counts what just happened: HTTP requests by route
 * and status with durations, upstream calls by server, method and outcome with durations, upstream up/down.
 */

test('/metrics counts the calls just made', async (t) => {
  const fixture = await startHttpFixture(t, {
    name: 'fx',
    tools: [{ name: 'ok' }, { name: 'fails', handler: () => ({ content: [{ type: 'text', text: 'no' }], isError: true }) }]
  })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: fixture.url }] })
  const client = await connectClient(t, gateway.mcp)
  for (let i = 0; i < 3; i++) await client.callTool({ name: 'fx__ok', arguments: {} })
  await client.callTool({ name: 'fx__fails', arguments: {} })
  await client.callTool({ name: 'nope', arguments: {} }).catch(() => {})

  const res = await fetch(gateway.base + '/metrics')
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  const families = new Map(parsePrometheusTextFormat(text).map(f => [f.name, f]))
  // The parser drops the labels of histogram samples: read those lines directly.
  const line = (series: string) => text.split('\n').find(l => l.startsWith(series + ' '))?.slice(series.length + 1)
  const sample = (name: string, labels: Record<string, string>) =>
    families.get(name)?.metrics.find(m => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))

  t.equal(families.get('mcp_gateway_upstream_calls_total')?.type, 'COUNTER')
  t.equal(sample('mcp_gateway_upstream_calls_total', { server: 'fx', method: 'tools/call', outcome: 'success' })?.value, '3')
  t.equal(sample('mcp_gateway_upstream_calls_total', { server: 'fx', method: 'tools/call', outcome: 'tool_error' })?.value, '1')
  t.equal(families.get('mcp_gateway_upstream_call_seconds_total')?.type, 'COUNTER')
  t.ok(Number(sample('mcp_gateway_upstream_call_seconds_total', { server: 'fx', method: 'tools/call', outcome: 'success' })?.value) > 0,
    'seconds spent per upstream, for its mean latency')
  t.equal(families.get('mcp_gateway_upstream_call_duration_seconds')?.type, 'HISTOGRAM')
  const labels = '{method="tools/call",outcome="success"'
  t.equal(line(`mcp_gateway_upstream_call_duration_seconds_count${labels}}`), '3', 'three call durations observed')
  t.ok(Number(line(`mcp_gateway_upstream_call_duration_seconds_sum${labels}}`)) > 0)
  t.equal(line(`mcp_gateway_upstream_call_duration_seconds_bucket${labels},le="+Inf"}`), '3')
  t.equal(line(`mcp_gateway_upstream_call_duration_seconds_bucket${labels},le="60"}`), '3', 'buckets are cumulative')
  t.notMatch(text, /upstream_call_duration_seconds_bucket\{server=/, 'no latency distribution per upstream: the label set stays bounded')

  const posts = sample('mcp_gateway_http_requests_total', { method: 'POST', route: '/mcp', status_code: '200' })
  t.ok(Number(posts?.value) >= 6, `POST /mcp 200 counted (${posts?.value}): initialize, list and the calls`)
  t.equal(line('mcp_gateway_http_request_duration_seconds_count{method="POST",route="/mcp",status_code="200"}'), posts?.value,
    'every counted request has a duration')
  t.ok(sample('mcp_gateway_http_requests_total', { method: 'POST', route: '/mcp', status_code: '202' }), 'notifications are counted as 202')

  t.equal(sample('mcp_gateway_upstream_up', { server: 'fx', service: 'fx' })?.value, '1')
  t.equal(families.get('mcp_gateway_sessions')?.metrics[0]?.value, '1')

  gateway.app.mcpRegistry.remove('fx')
  const after = new Map(parsePrometheusTextFormat(await (await fetch(gateway.base + '/metrics')).text()).map(f => [f.name, f]))
  t.notOk(after.get('mcp_gateway_upstream_up')?.metrics.some(m => m.labels?.server === 'fx'), 'a removed upstream leaves the gauge')
})

test('label sets stay bounded: a method a client made up is counted as "other"', async (t) => {
  const gateway = await startGateway(t, {})
  for (let i = 0; i < 50; i++) gateway.app.mcpMetrics.upstreamCall('fx', `made/up/${i}`, 'rpc_error', 0.01)
  const text = await (await fetch(gateway.base + '/metrics')).text()
  t.match(text, /^mcp_gateway_upstream_calls_total\{server="fx",method="other",outcome="rpc_error"\} 50$/m)
  t.notMatch(text, /made\/up/)
})

test('metrics can be turned off, and process metrics come with them by default', async (t) => {
  const off = await startGateway(t, { metrics: { enabled: false } })
  t.equal((await fetch(off.base + '/metrics')).status, 404, 'no /metrics route when disabled')
  const on = await startGateway(t, { metrics: { defaultMetrics: true, prefix: 'gw_' } })
  const text = await (await fetch(on.base + '/metrics')).text()
  t.match(text, /^gw_process_cpu_user_seconds_total /m, 'process metrics carry the prefix')
  t.match(text, /^# TYPE gw_http_requests_total counter$/m)
})
