import cors from '@fastify/cors'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressOutcome, RateLimiter } from '../src/limits/rate-limiter.js'
import type { RateRule } from '../src/limits/rate.js'

/**
 * The HTTP edge of every gateway route: security headers (helmet's, set for a JSON API: nothing may be framed,
 * embedded or run from an answer — computed once at start-up, since none depends on the request, and set on every
 * reply before its handler runs, so hijacked SSE answers carry them too), CORS for the browser origins in `allowedOrigins` (@fastify/cors:
 * preflights answered, the MCP headers allowed and exposed), the per-address rate limit (`rateLimit.perIp`: every
 * request to a gateway route counts, before authentication, so failed authentications count too; /health is
 * exempt), and a request body over the limit
 * answered 413 only after the client has finished sending it, so the client reads the answer instead of failing
 * with EPIPE.
 */

/** Request headers a browser client of MCP sends. */
const ALLOWED_HEADERS = ['content-type', 'accept', 'authorization', 'x-api-key', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']
/** Response headers a browser client must be able to read. */
const EXPOSED_HEADERS = [
  'mcp-session-id', 'mcp-protocol-version', 'www-authenticate', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'
]
/** How much of an over-limit body is read and discarded before the 413; beyond it the connection is closed. */
const DRAIN_LIMIT = 64 * 1024 * 1024
const DRAIN_TIME = 10_000

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A health probe: never refused by rateLimit.perIp or the overload guard (a busy gateway is not a dead one). */
    mcpProbe?: boolean
  }
}

export default fp(async function mcpGatewayEdge (app) {
  const { allowedOrigins } = app.mcpConfig
  const headers = securityHeaders({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    xFrameOptions: { action: 'deny' },
    // Browser apps on the allowed origins read the answers (CORS decides who); without any, same-origin only.
    crossOriginResourcePolicy: { policy: allowedOrigins.length > 0 ? 'cross-origin' : 'same-origin' },
    // HTTPS is the operator's choice (tls, or a proxy in front); an HSTS header from plain HTTP would mislead.
    strictTransportSecurity: app.mcpConfig.tls !== null,
    // Headers for HTML documents a JSON API never serves: each costs bytes on every answer for nothing.
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false
  })
  app.addHook('onRequest', function setSecurityHeaders (request, reply, done) {
    reply.headers(headers)
    done()
  })
  if (allowedOrigins.length > 0) {
    await app.register(cors, {
      origin: allowedOrigins.includes('*') ? '*' : [...allowedOrigins],
      methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600
    })
  }
  const limiter = app.mcpRateLimit
  if (limiter?.perIp != null) limitAddresses(app, limiter, limiter.perIp)
  // Callback-style: it runs on every answer, and only a 413 has anything to wait for.
  app.addHook('onSend', function drainRefusedBody (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) {
    if (reply.statusCode !== 413) return done(null, payload)
    drain(request.raw, reply).then(() => done(null, payload), () => done(null, payload))
  })
}, { name: 'mcp-gateway-edge', fastify: '5.x', dependencies: ['mcp-gateway-config', 'mcp-gateway-rate-limit'] })

/**
 * `rateLimit.perIp` on every gateway route, counted in the gateway's RateLimiter (its store: this process or Redis):
 * an instance hook, so it runs before the routes' own onRequest hooks (authentication among them). Every answer gets
 * RateLimit-Limit (the bucket's size), RateLimit-Remaining and RateLimit-Reset (seconds until the bucket is full); a
 * refusal is the 429 of ERR_RATE_LIMITED, with Retry-After. Probe routes (`config: { mcpProbe: true }`) are exempt.
 * (Not @fastify/rate-limit: its store contract is a fixed window, so a burst reads wrong in its headers, and an app
 * embedding the gateway that registered it itself would share its decorators — and lose its own limit on these routes.)
 */
function limitAddresses (app: FastifyInstance, limiter: RateLimiter, rule: RateRule): void {
  const limit = String(rule.burst)
  app.addHook('onRequest', function limitAddress (request, reply, done) {
    if (request.routeOptions.config?.mcpProbe === true) return done()
    const counted = ({ outcome, error }: AddressOutcome) => {
      reply.header('ratelimit-limit', limit)
      reply.header('ratelimit-remaining', String(outcome.decision.remaining))
      reply.header('ratelimit-reset', String(Math.ceil(outcome.decision.resetMs / 1000)))
      done(error)
    }
    const taken = limiter.takeAddress(request.ip)
    if (taken instanceof Promise) taken.then(counted, done)
    else counted(taken)
  })
}

/**
 * The headers helmet sets with these options, collected once (helmet's per-request middleware would rebuild
 * them on every request; @fastify/helmet's wrapper cost a tenth of the gateway's CPU in the bench).
 */
function securityHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const collector = {
    setHeader (name: string, value: string | number) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { Reflect.deleteProperty(headers, name.toLowerCase()) }
  }
  helmet(options)({} as IncomingMessage, collector as unknown as ServerResponse, (err?: unknown) => {
    if (err !== undefined && err !== null) throw err
  })
  return headers
}

/**
 * Reads and discards the rest of a request body (a decoder it was piped into is cut off first), up to DRAIN_LIMIT
 * bytes and DRAIN_TIME; a client that sends more or longer has its connection closed after the answer.
 */
function drain (raw: IncomingMessage, reply: FastifyReply): Promise<void> {
  if (raw.complete || raw.destroyed) return Promise.resolve()
  return new Promise(resolve => {
    let read = 0
    const finish = (close: boolean) => {
      clearTimeout(timer)
      raw.removeListener('data', onData)
      raw.removeListener('end', onEnd)
      raw.removeListener('error', onEnd)
      if (close) reply.header('connection', 'close')
      resolve()
    }
    const onData = (chunk: Buffer) => {
      read += chunk.length
      if (read > DRAIN_LIMIT) finish(true)
    }
    const onEnd = () => finish(false)
    const timer = setTimeout(() => finish(true), DRAIN_TIME)
    raw.unpipe()
    raw.on('data', onData)
    raw.once('end', onEnd)
    raw.once('error', onEnd)
    raw.resume()
  })
}
