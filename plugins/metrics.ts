import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { CallOutcome } from '../src/proxy.js'

/**
 * Prometheus metrics in the gateway's own prom-client Registry (never the global one, so two gateways in one
 * process, or a host app with its own metrics, never collide). Records every HTTP request the gateway serves;
 * other plugins record upstream calls, upstream health and sessions through the decorator.
 */

export interface GatewayMetrics {
  readonly registry: Registry
  upstreamCall (server: string, method: string, outcome: CallOutcome, seconds: number): void
  upstreamUp (server: string, service: string, up: boolean | undefined): void
  sessions (count: number): void
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpMetrics: GatewayMetrics
  }
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export default fp(async function mcpGatewayMetrics (app) {
  const { enabled, prefix, defaultMetrics } = app.mcpConfig.metrics
  const registry = new Registry()
  if (enabled && defaultMetrics) collectDefaultMetrics({ register: registry, prefix })

  const httpRequests = new Counter({
    name: prefix + 'http_requests_total',
    help: 'HTTP requests served by the gateway, by route and status',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [registry]
  })
  const httpDuration = new Histogram({
    name: prefix + 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request (until the response ended; streams count their whole life)',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
  const upstreamCalls = new Counter({
    name: prefix + 'upstream_calls_total',
    help: 'Requests forwarded to upstream servers, by server, MCP method and outcome',
    labelNames: ['server', 'method', 'outcome'] as const,
    registers: [registry]
  })
  const upstreamDuration = new Histogram({
    name: prefix + 'upstream_call_duration_seconds',
    help: 'Time an upstream took to answer a forwarded request',
    labelNames: ['server', 'method', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
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

  // Label lookups hash their arguments on every call: keep the children per label set instead.
  type Child = { inc (): void, observe? (v: number): void }
  const httpChildren = new Map<string, [Child, { observe (v: number): void }]>()
  const callChildren = new Map<string, [Child, { observe (v: number): void }]>()

  const metrics: GatewayMetrics = {
    registry,
    upstreamCall (server, method, outcome, seconds) {
      if (!enabled) return
      const key = server + '\0' + method + '\0' + outcome
      let children = callChildren.get(key)
      if (children === undefined) {
        children = [upstreamCalls.labels(server, method, outcome), upstreamDuration.labels(server, method, outcome)]
        callChildren.set(key, children)
      }
      children[0].inc()
      children[1].observe(seconds)
    },
    upstreamUp (server, service, up) {
      if (up === undefined) {
        upstreamUp.remove(server, service)
        for (const key of callChildren.keys()) if (key.startsWith(server + '\0')) callChildren.delete(key)
      } else upstreamUp.labels(server, service).set(up ? 1 : 0)
    },
    sessions (count) {
      sessions.set(count)
    }
  }
  app.decorate('mcpMetrics', metrics)

  if (enabled) {
    app.addHook('onResponse', function recordHttpRequest (request, reply, done) {
      const route = request.routeOptions.url ?? 'unmatched'
      const key = request.method + ' ' + route + ' ' + reply.statusCode
      let children = httpChildren.get(key)
      if (children === undefined) {
        const labels = [request.method, route, String(reply.statusCode)] as const
        children = [httpRequests.labels(...labels), httpDuration.labels(...labels)]
        httpChildren.set(key, children)
      }
      children[0].inc()
      children[1].observe(reply.elapsedTime / 1000)
      done()
    })
  }
}, { name: 'mcp-gateway-metrics', fastify: '5.x', dependencies: ['mcp-gateway-config'] })
