import { LATEST_PROTOCOL_VERSION } from './protocol.js'

/**
 * Who is calling, as every request into the engine carries it: the caller's identity (`principal`), the protocol
 * version it speaks and the capabilities it declared. Authorization, rate limits, the cache and the balancer read
 * it; nothing in the engine reaches for HTTP to learn who asked. A client session is its own context; calls
 * without a session (REST, the programmatic API) carry ANONYMOUS or a context their caller built.
 */

/** An authenticated caller. */
export interface Principal {
  /** How it authenticated: an API key and a JWT subject of the same name are different callers. */
  readonly kind: 'api-key' | 'jwt' | 'certificate'
  /** Stable id (an API key's name, a JWT's subject, a client certificate's CN). */
  readonly id: string
  readonly roles: readonly string[]
  /** OAuth scopes the token carries (none for API keys). */
  readonly scopes: readonly string[]
}

/** Whether two principals are the same caller (null: the anonymous caller of a gateway without authentication). */
export function samePrincipal (a: Principal | null, b: Principal | null): boolean {
  if (a === null || b === null) return a === b
  return a.kind === b.kind && a.id === b.id
}

export interface ClientContext {
  /** null while the gateway has no authentication configured. */
  readonly principal: Principal | null
  readonly protocolVersion: string
  /** What the client declared at initialize (empty without a session). */
  readonly capabilities: Readonly<Record<string, unknown>>
  /** Where the client connects from, when known. */
  readonly address: string | undefined
}

export const ANONYMOUS: ClientContext = Object.freeze({
  principal: null,
  protocolVersion: LATEST_PROTOCOL_VERSION,
  capabilities: Object.freeze({}),
  address: undefined
})
