import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { HealthReply, InfoReply, ProbeReply, StatusReply, UpstreamHealthReply } from '../schemas/status.js'
import type { SUPPORTED_PROTOCOL_VERSIONS } from '../src/protocol.js'

/**
 * Operational endpoints. /health/live (the process answers) and /health/ready (it takes new clients; 503 while
 * shutting down) are the probes for Docker and Kubernetes; /health answers 503 when no upstream is usable (for load
 * balancers in front of several gateways); all three stay open whatever `auth` says; /upstream/health tells per
 * upstream what decides whether it takes calls (status, load, queue, circuit); /status shows every upstream's state and why, and /info
 * describes this gateway: both behind authentication when `auth` is configured.
 */

export interface StatusRoutesOptions {
  version: string
  startedAt: Date
  protocolVersions: typeof SUPPORTED_PROTOCOL_VERSIONS
}

export default async function statusRoutes (fastify: FastifyInstance, opts: StatusRoutesOptions) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const proxy = app.mcpProxy
  const config = app.mcpConfig

  app.get('/health', { config: { mcpProbe: true }, schema: { response: { 200: HealthReply, 503: HealthReply } } }, async (request, reply) => {
    const servers = proxy.upstreamCounts()
    const status = servers.up === 0 ? 'unavailable' : servers.down > 0 ? 'degraded' : 'ok'
    reply.code(servers.up === 0 ? 503 : 200)
    return { status, servers, tools: proxy.catalog.counts().tools } as const
  })

  // Probes: liveness says only that the process answers (a gateway with no upstream yet is not broken, so restarting
  // it would not help); readiness that it takes new clients — 503 from the moment shutdown begins.
  app.get('/health/live', { config: { mcpProbe: true }, schema: { response: { 200: ProbeReply } } }, async () => ({ status: 'ok' }) as const)
  app.get('/health/ready', { config: { mcpProbe: true }, schema: { response: { 200: ProbeReply, 503: ProbeReply } } }, async (request, reply) => {
    if (!proxy.draining) return { status: 'ok' } as const
    reply.code(503)
    return { status: 'draining' } as const
  })

  // /status and /info tell what is behind the gateway: a page that re-points its domain at 127.0.0.1 (DNS
  // rebinding) must not read them, so the Origin/Host guard runs first, then authentication.
  const guarded = app.mcpAuth.enabled ? [app.mcpAuth.guardOrigin, app.mcpAuth.authenticate] : [app.mcpAuth.guardOrigin]

  app.get('/status', { onRequest: guarded, schema: { response: { 200: StatusReply } } }, async () => {
    const catalog = proxy.catalog
    return {
      name: config.name,
      version: opts.version,
      startedAt: opts.startedAt.toISOString(),
      uptime: process.uptime(),
      sessions: proxy.sessions.size,
      catalog: catalog.counts(),
      collisions: catalog.collisions,
      ...(app.mcpRateLimit === null ? {} : { rateLimit: app.mcpRateLimit.status() }),
      ...(proxy.cache === undefined ? {} : { cache: proxy.cache.status() }),
      servers: proxy.upstreams()
    }
  })

  app.get('/upstream/health', { onRequest: guarded, schema: { response: { 200: UpstreamHealthReply } } }, async () => ({
    upstreams: proxy.upstreamHealth()
  }))

  app.get('/info', { onRequest: guarded, schema: { response: { 200: InfoReply } } }, async (request) => {
    const base = (request.routeOptions.url ?? '/info').slice(0, -'/info'.length)
    return {
      name: config.name,
      version: opts.version,
      protocolVersions: [...opts.protocolVersions],
      transports: ['streamable-http', 'sse', 'websocket'],
      prefixMode: config.prefixMode,
      separator: config.separator,
      endpoints: {
        mcp: base + '/mcp',
        sse: base + '/sse',
        websocket: base + '/ws',
        toolsList: base + '/mcp/tools/list',
        toolsCall: base + '/mcp/tools/call',
        resourcesList: base + '/mcp/resources/list',
        health: base + '/health',
        status: base + '/status',
        upstreamHealth: base + '/upstream/health',
        stats: base + '/stats',
        metrics: base + '/metrics'
      }
    }
  })
}
