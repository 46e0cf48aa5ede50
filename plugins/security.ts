import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { ERR_ADMIN_UNAUTHORIZED } from '../src/errors.js'
import { createRequestGuard } from '../src/origin-guard.js'

/**
 * Request security shared by the route plugins: the Origin/Host check every MCP and REST endpoint runs first
 * (DNS-rebinding protection), and the admin API key. The key is compared in constant time (both sides hashed to
 * the same length first, so neither its length nor its prefix leaks).
 */

export interface GatewayAuth {
  /** onRequest hook: 403 for a foreign Origin or Host. Callback-style: it runs on every call, so no promise. */
  guardOrigin (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void
  /** onRequest hook for /admin: 401 without the admin key. */
  requireAdmin (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Whether an admin key is configured (the admin routes exist only then). */
  readonly adminEnabled: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpAuth: GatewayAuth
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest()

export default fp(async function mcpGatewaySecurity (app) {
  const config = app.mcpConfig
  const guard = createRequestGuard({ allowedOrigins: config.allowedOrigins, allowedHosts: config.allowedHosts })
  const adminKey = config.admin.apiKey === null ? null : digest(config.admin.apiKey)

  const auth: GatewayAuth = {
    adminEnabled: adminKey !== null,
    guardOrigin (request, reply, done) {
      done(guard({ origin: request.headers.origin, host: request.headers.host, localAddress: request.socket.localAddress }))
    },
    async requireAdmin (request) {
      const header = request.headers.authorization
      const presented = typeof header === 'string' && header.startsWith('Bearer ')
        ? header.slice(7)
        : request.headers['x-api-key']
      if (adminKey === null || typeof presented !== 'string' || !timingSafeEqual(digest(presented), adminKey)) {
        throw new ERR_ADMIN_UNAUTHORIZED()
      }
    }
  }
  app.decorate('mcpAuth', auth)
}, { name: 'mcp-gateway-security', fastify: '5.x', dependencies: ['mcp-gateway-config'] })
