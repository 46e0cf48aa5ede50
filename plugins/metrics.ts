import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, type Metric, Registry } from 'prom-client'
import { counterOf, histogramOf, LatencyRecorder, type Series, sumOf } from '../src/latency-recorder.js'
import type { CallOutcome } from '../src/forwarder.js'
import { codeType, OTHER, OUTCOME_ERROR_TYPES } from '../src/mcp-semconv.js'
import type { CacheObserver } from '../src/result-cache.js'

/**
 * Prometheus metrics in the gateway's own prom-client Registry (never the global one, so two gateways in one
 * process, or a host app with its own metrics, never collide). Records every HTTP request the gateway serves;
 * other plugins record upstream calls, upstream health and sessions through the decorator.
 */

export interface GatewayMetrics {
  readonly registry: Registry
  /** An attempt on an upstream ended (`code`: the JSON-RPC error it was answered with, if any). */
  upstreamCall (server: string, method: string, outcome: CallOutcome, seconds: number, code?: number): void
  /** A client request was answered (mcp_server_operation_duration_seconds). */
  serverOperation (method: string, seconds: number, errorType: string | undefined): void
  upstreamUp (server: string, service: string, up: boolean | undefined): void
  sessions (count: number): void
  /** A request refused by a rate limit (rateLimit.perIp, .perPrincipal or .perTool). */
  rateLimited (limit: string): void
  /** An upstream's circuit breaker changed state (to open, half-open or closed). */
  circuitTransition (to: string): void
  /** A call refused by an upstream's concurrency limit (`full` queue, or a `timeout` waiting). */
  upstreamBusy (reason: string): void
  /** A failed call tried again elsewhere (`retried`), or not for want of retry budget (`refused`). */
  retry (outcome: string): void
  /** An upstream was ejected as an outlier (`consecutive` failures, or its `error_rate`). */
  ejection (kind: string): void
  /** An upstream's connection entered a state (up, down, connecting, disabled, stopped). */
  upstreamState (to: string): void
  /** A call waited this long in an upstream's queue for a slot. */
  queueWait (seconds: number): void
  /** A read-only call was hedged (`sent`), the hedge answered first (`won`), or it was not sent for want of budget (`refused`). */
  hedge (outcome: string): void
  /** An alert fired or resolved. */
  alertTransition (to: string): void
  /** An alert message to a webhook was delivered (`sent`), will be tried again (`retried`), or given up (`dropped`). */
  alertNotification (outcome: string): void
  /** How many alerts are firing now. */
  alertsFiring (count: number): void
  /** An upstream's anomaly scores (a series only while one is above 0). */
  anomalyScore (server: string, latency: number, errors: number): void
  /** The result cache: a hit, a miss, a result stored (`bytes`: what it holds now), each layer's answers and size. */
  readonly cache: Required<CacheObserver>
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpMetrics: GatewayMetrics
  }
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** The buckets the OpenTelemetry MCP conventions give their operation-duration histograms. */
const MCP_OPERATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]
/** The methods whose calls get their own `method` label; any other (an envelope request) is counted as `other`. */
const LABELLED_METHODS = new Set([
  'tools/call', 'resources/read', 'prompts/get', 'completion/complete', 'tools/list', 'resources/list',
  'resources/templates/list', 'prompts/list', 'resources/subscribe', 'resources/unsubscribe', 'logging/setLevel', 'ping'
])

export default fp(async function mcpGatewayMetrics (app) {
  const { enabled, prefix, defaultMetrics } = app.mcpConfig.metrics
  const registry = new Registry()
  if (enabled && defaultMetrics) collectDefaultMetrics({ register: registry, prefix })

  const http = new LatencyRecorder(['method', 'route', 'status_code'], DURATION_BUCKETS)
  // Label sets stay bounded at a thousand upstreams: per upstream, counts and total seconds (a handful of series
  // each); latency distributions by method and outcome only, not per upstream (at 18 lines per series, that alone
  // was megabytes per scrape).
  const calls = new LatencyRecorder(['server', 'method', 'outcome'], [])
  const latency = new LatencyRecorder(['method', 'outcome'], DURATION_BUCKETS)
  registry.registerMetric(counterOf(http, prefix + 'http_requests_total',
    'HTTP requests served by the gateway, by route and status') as unknown as Metric)
  registry.registerMetric(histogramOf(http, prefix + 'http_request_duration_seconds',
    'Time to answer an HTTP request (until the response ended; streams count their whole life)') as unknown as Metric)
  registry.registerMetric(counterOf(calls, prefix + 'upstream_calls_total',
    'Requests forwarded to upstream servers, by server, MCP method and outcome') as unknown as Metric)
  registry.registerMetric(sumOf(calls, prefix + 'upstream_call_seconds_total',
    'Seconds upstream servers took to answer forwarded requests, by server, MCP method and outcome (divide by upstream_calls_total for the mean)') as unknown as Metric)
  registry.registerMetric(histogramOf(latency, prefix + 'upstream_call_duration_seconds',
    'Time an upstream took to answer a forwarded request, by MCP method and outcome') as unknown as Metric)
  // The OpenTelemetry MCP conventions' two histograms, in Prometheus form and under their own names (no prefix), by
  // method and error type only: a gen_ai_tool_name label would be a series per tool of a thousand upstreams.
  const serverOperations = new LatencyRecorder(['mcp_method_name', 'error_type'], MCP_OPERATION_BUCKETS)
  const clientOperations = new LatencyRecorder(['mcp_method_name', 'error_type'], MCP_OPERATION_BUCKETS)
  registry.registerMetric(histogramOf(serverOperations, 'mcp_server_operation_duration_seconds',
    'MCP request duration as the gateway (the server its clients talk to) saw it, from receipt until the answer (OpenTelemetry mcp.server.operation.duration); error_type empty on success') as unknown as Metric)
  registry.registerMetric(histogramOf(clientOperations, 'mcp_client_operation_duration_seconds',
    'MCP request duration as the gateway (a client of its upstreams) saw it, per attempt, from sending until the answer (OpenTelemetry mcp.client.operation.duration); error_type empty on success') as unknown as Metric)
  const serverSeries = new Map<string, Map<string, Series>>()
  const clientSeries = new Map<string, Map<string, Series>>()
  const upstreamUp = new Gauge({
    name: prefix + 'upstream_up',
    help: '1 when the upstream is connected and healthy, 0 otherwise',
    labelNames: ['server', 'service'] as const,
    registers: [registry]
  })
  const sessions = new Gauge({
    name: prefix + 'sessions',
    help: 'Client sessions open on the gateway',
    registers: [registry]
  })
  // Counters of events with one label of a few values (states, reasons, outcomes).
  const eventCounter = (name: string, help: string, label: string) =>
    new Counter({ name: prefix + name, help, labelNames: [label], registers: [registry] })
  const circuits = eventCounter('circuit_transitions_total',
    'Circuit breaker state changes of upstreams, by the state entered (open, half-open, closed)', 'to')
  const busy = eventCounter('upstream_busy_total',
    'Calls refused by an upstream\'s concurrency limit, by reason (full: its queue was full; timeout: no slot in time)', 'reason')
  const retries = eventCounter('retries_total',
    'Failed calls tried again on another replica (retried), or not because the retry budget was spent (refused)', 'outcome')
  const ejections = eventCounter('outlier_ejections_total',
    'Upstreams ejected as outliers, by what ejected them (consecutive failures, error_rate over the window)', 'reason')
  const states = eventCounter('upstream_state_changes_total',
    'Upstream connection state changes, by the state entered (up, down, connecting, disabled, stopped)', 'to')
  const hedges = eventCounter('hedges_total',
    'Hedged read-only calls: second attempts sent, those whose answer came first (won), and hedges not sent for want of retry budget (refused)', 'outcome')
  const alertTransitions = eventCounter('alert_transitions_total', 'Alerts that fired or resolved, by the state entered (firing, resolved)', 'to')
  const alertNotifications = eventCounter('alert_notifications_total',
    'Alert messages to webhooks: delivered (sent), to be tried again (retried), given up (dropped)', 'outcome')
  const firing = new Gauge({ name: prefix + 'alerts_firing', help: 'Alerts firing now', registers: [registry] })
  const anomaly = new Gauge({
    name: prefix + 'upstream_anomaly_score',
    help: 'How far an upstream\'s latency or error rate is above its own baseline (a robust z-score); present only while above 0',
    labelNames: ['server', 'kind'] as const,
    registers: [registry]
  })
  const cacheLookups = eventCounter('cache_lookups_total', 'Result cache lookups, by outcome (hit, miss)', 'outcome')
  const cacheBytes = new Gauge({ name: prefix + 'cache_bytes', help: 'What the result cache holds in memory (UTF-16 units of its results and keys)', registers: [registry] })
  const cacheHits = enabled ? cacheLookups.labels('hit') : undefined
  const cacheMisses = enabled ? cacheLookups.labels('miss') : undefined
  // Per layer beside the lookups above (one per call, whichever layer answered): a lookup that misses memory and
  // hits Redis counts once in each layer, so summing these would count a call twice.
  const cacheLayerLookups = new Counter({
    name: prefix + 'cache_layer_lookups_total',
    help: 'Result cache lookups per layer (memory, redis, file), by outcome (hit, miss, unavailable: Redis away or busy, a disk error)',
    labelNames: ['layer', 'outcome'] as const,
    registers: [registry]
  })
  const cacheLayerBytes = new Gauge({
    name: prefix + 'cache_layer_bytes',
    help: 'What a result cache layer of this process holds (memory: UTF-16 units of results and keys; file: bytes on disk)',
    labelNames: ['layer'] as const,
    registers: [registry]
  })
  const layerSeries: Record<string, Record<string, { inc (): void }>> = {}
  const queueWaits = new LatencyRecorder([], DURATION_BUCKETS)
  const queueWait = queueWaits.series()
  registry.registerMetric(histogramOf(queueWaits, prefix + 'upstream_queue_wait_seconds',
    'Time calls waited in an upstream\'s queue (maxConcurrent) before they were sent') as unknown as Metric)
  const rateLimited = eventCounter('rate_limited_total', 'Requests refused by a rate limit, by limit (perIp, perPrincipal, perTool)', 'limit')

  // Series are resolved once per label set and kept, in maps nested by label: each lookup hashes a string that
  // exists already (a server id, a method name), where one joined key would build and hash a new string per call.
  const httpSeries = new Map<string, Series>()
  const callSeries = new Map<string, Map<string, Map<string, Series>>>()
  const latencySeries = new Map<string, Map<string, Series>>()

  const metrics: GatewayMetrics = {
    registry,
    upstreamCall (server, method, outcome, seconds, code) {
      if (!enabled) return
      operationSeries(clientOperations, clientSeries, method, outcome === 'rpc_error' && code !== undefined ? codeType(code) : OUTCOME_ERROR_TYPES[outcome]).observe(seconds)
      // Clients choose the method of an envelope request: only the methods the gateway forwards get their own label.
      const name = LABELLED_METHODS.has(method) ? method : 'other'
      const byOutcome = inner(inner(callSeries, server), name)
      let series = byOutcome.get(outcome)
      if (series === undefined) byOutcome.set(outcome, series = calls.series(server, name, outcome))
      series.observe(seconds)
      const distributions = inner(latencySeries, name)
      let distribution = distributions.get(outcome)
      if (distribution === undefined) distributions.set(outcome, distribution = latency.series(name, outcome))
      distribution.observe(seconds)
    },
    upstreamUp (server, service, up) {
      if (up === undefined) {
        upstreamUp.remove(server, service)
        calls.remove(labels => labels.server === server)
        callSeries.delete(server)
      } else upstreamUp.labels(server, service).set(up ? 1 : 0)
    },
    serverOperation (method, seconds, errorType) {
      if (enabled) operationSeries(serverOperations, serverSeries, method, errorType ?? '').observe(seconds)
    },
    sessions (count) {
      sessions.set(count)
    },
    rateLimited (limit) {
      if (enabled) rateLimited.labels(limit).inc()
    },
    circuitTransition (to) {
      if (enabled) circuits.labels(to).inc()
    },
    upstreamBusy (reason) {
      if (enabled) busy.labels(reason).inc()
    },
    retry (outcome) {
      if (enabled) retries.labels(outcome).inc()
    },
    ejection (kind) {
      if (enabled) ejections.labels(kind).inc()
    },
    upstreamState (to) {
      if (enabled) states.labels(to).inc()
    },
    queueWait (seconds) {
      if (enabled) queueWait.observe(seconds)
    },
    hedge (outcome) {
      if (enabled) hedges.labels(outcome).inc()
    },
    alertTransition (to) {
      if (enabled) alertTransitions.labels(to).inc()
    },
    alertNotification (outcome) {
      if (enabled) alertNotifications.labels(outcome).inc()
    },
    alertsFiring (count) {
      if (enabled) firing.set(count)
    },
    cache: {
      hit () { cacheHits?.inc() },
      miss () { cacheMisses?.inc() },
      stored (bytes) { if (enabled) cacheBytes.set(bytes) },
      layer (layer, outcome) {
        if (!enabled) return
        const byOutcome = layerSeries[layer] ??= {}
        ;(byOutcome[outcome] ??= cacheLayerLookups.labels(layer, outcome)).inc()
      },
      layerBytes (layer, bytes) { if (enabled) cacheLayerBytes.labels(layer).set(bytes) }
    },
    anomalyScore (server, latency, errors) {
      if (!enabled) return
      for (const [kind, score] of [['latency', latency], ['errors', errors]] as const) {
        if (score > 0) anomaly.labels(server, kind).set(score)
        else anomaly.remove(server, kind)
      }
    }
  }
  app.decorate('mcpMetrics', metrics)

  if (enabled) {
    app.addHook('onResponse', function recordHttpRequest (request, reply, done) {
      const route = request.routeOptions.url ?? 'unmatched'
      const key = request.method + ' ' + route + ' ' + reply.statusCode
      let series = httpSeries.get(key)
      if (series === undefined) {
        series = http.series(request.method, route, String(reply.statusCode))
        httpSeries.set(key, series)
      }
      series.observe(reply.elapsedTime / 1000)
      done()
    })
  }
}, { name: 'mcp-gateway-metrics', fastify: '5.x', dependencies: ['mcp-gateway-config'] })

/** The series of an MCP operation histogram; a method the gateway does not serve is `_OTHER` (clients choose it). */
function operationSeries (recorder: LatencyRecorder, cache: Map<string, Map<string, Series>>, method: string, errorType: string): Series {
  const name = LABELLED_METHODS.has(method) || method === 'initialize' ? method : OTHER
  const byType = inner(cache, name)
  let series = byType.get(errorType)
  if (series === undefined) byType.set(errorType, series = recorder.series(name, errorType))
  return series
}

/** The map under `key` in `outer`, created on first use. */
function inner<V> (outer: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let map = outer.get(key)
  if (map === undefined) outer.set(key, map = new Map())
  return map
}
