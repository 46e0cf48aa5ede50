import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import type { TLSSocket } from 'node:tls'
import { AccessPolicy } from '../src/auth/access-policy.js'
import { ApiKeys } from '../src/auth/api-keys.js'
import { type AuthRefusal, Authenticator, type PresentedCredentials } from '../src/auth/authenticator.js'
import { challenge } from '../src/auth/protected-resource.js'
import type { Principal } from '../src/client-context.js'
import { sha256Hex } from '../src/config/auth.js'
import {
  ERR_ADMIN_FORBIDDEN, ERR_ADMIN_UNAUTHORIZED, ERR_AUTH_UNAVAILABLE, ERR_CREDENTIALS_INVALID, ERR_INSUFFICIENT_SCOPE, ERR_UNAUTHENTICATED
} from '../src/errors.js'
import { createRequestGuard } from '../src/origin-guard.js'

/**
 * Request security shared by the route plugins: the Origin/Host check every MCP and REST endpoint runs first
 * (DNS-rebinding protection); client authentication (`auth`: API keys, JWTs, OAuth access tokens), which sets
 * `request.principal` or refuses with 401/403 and a WWW-Authenticate challenge; and the admin API key, compared in
 * constant time like client keys (ApiKeys).
 */

export interface GatewayAuth {
  /** onRequest hook: 403 for a foreign Origin or Host. Callback-style: it runs on every call, so no promise. */
  guardOrigin (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void
  /** onRequest hook: sets request.principal, or refuses the request. Routes add it only when `enabled`. */
  authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** onRequest hook for /admin: the admin key, or a principal with an `admin` role; 401 without, 403 for another principal. */
  requireAdmin (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Whether the admin API can be used: an admin key is configured, or a role grants it (the routes exist only then). */
  readonly adminEnabled: boolean
  /** Whether clients must authenticate. */
  readonly enabled: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpAuth: GatewayAuth
  }
  interface FastifyRequest {
    /** Who sent the request; null without `auth` configured. */
    principal: Principal | null
  }
}

const REFUSALS = {
  400: ERR_CREDENTIALS_INVALID,
  401: ERR_UNAUTHENTICATED,
  403: ERR_INSUFFICIENT_SCOPE,
  503: ERR_AUTH_UNAVAILABLE
} as const

export default fp(async function mcpGatewaySecurity (app) {
  const config = app.mcpConfig
  const guard = createRequestGuard({ allowedOrigins: config.allowedOrigins, allowedHosts: config.allowedHosts })
  const adminKey = config.admin.apiKey === null ? null : new ApiKeys([{ name: 'admin', digest: sha256Hex(config.admin.apiKey), roles: [] }])
  const authenticator = config.auth === null ? undefined : new Authenticator(config.auth)
  const oauth = config.auth?.oauth ?? null
  // The same policy the engine applies (built from the same config); here it only answers who is an admin.
  const access = new AccessPolicy(config.auth?.roles ?? null)
  const adminByRole = authenticator !== undefined && access.grantsAdmin

  const refuse = (reply: FastifyReply, refusal: AuthRefusal): Error => {
    if (refusal.status === 401 || refusal.status === 403) reply.header('www-authenticate', challenge(refusal, oauth))
    if (refusal.status === 503) reply.header('retry-after', '5')
    return new REFUSALS[refusal.status](refusal.message)
  }

  app.decorateRequest('principal', null)
  const auth: GatewayAuth = {
    adminEnabled: adminKey !== null || adminByRole,
    enabled: authenticator !== undefined,
    guardOrigin (request, reply, done) {
      done(guard({ origin: request.headers.origin, host: request.headers.host, localAddress: request.socket.localAddress }))
    },
    async authenticate (request, reply) {
      if (authenticator === undefined) return
      const outcome = await authenticator.authenticate(credentialsOf(request))
      if ('refused' in outcome) {
        request.log.info({ status: outcome.refused.status, reason: outcome.refused.message }, 'request refused: authentication')
        throw refuse(reply, outcome.refused)
      }
      request.principal = outcome.principal
    },
    async requireAdmin (request, reply) {
      const header = request.headers.authorization
      const presented = typeof header === 'string' && header.startsWith('Bearer ')
        ? header.slice(7)
        : request.headers['x-api-key']
      if (adminKey !== null && typeof presented === 'string' && adminKey.match(presented) !== undefined) return
      if (!adminByRole || authenticator === undefined) throw new ERR_ADMIN_UNAUTHORIZED()
      const outcome = await authenticator.authenticate(credentialsOf(request))
      if ('refused' in outcome) throw refuse(reply, outcome.refused)
      request.principal = outcome.principal
      if (!access.for(outcome.principal).admin) throw new ERR_ADMIN_FORBIDDEN(outcome.principal.id)
    }
  }
  app.decorate('mcpAuth', auth)
}, { name: 'mcp-gateway-security', fastify: '5.x', dependencies: ['mcp-gateway-config'] })

/** The credentials a request carries: its headers, and the subject of a client certificate TLS verified. */
function credentialsOf (request: FastifyRequest): PresentedCredentials {
  const socket = request.raw.socket as TLSSocket
  const subject = socket.authorized === true ? socket.getPeerCertificate().subject?.CN : undefined
  return {
    authorization: request.headers.authorization,
    apiKey: request.headers['x-api-key'],
    certificateSubject: typeof subject === 'string' ? subject : undefined
  }
}
