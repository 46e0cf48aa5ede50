import type { AuthSettings } from '../config/types.js'
import type { Principal } from '../client-context.js'
import { ApiKeys } from './api-keys.js'
import { JwtVerifier, KeysUnavailable, TokenRefused } from './jwt-verifier.js'

/**
 * Who a request comes from, from its credential: an API key (`X-API-Key`, or `Authorization: Bearer <key>`), a
 * JWT bearer token (verified by JwtVerifier; with `auth.oauth`, it must also carry the required scopes), or a
 * client certificate the TLS handshake verified whose subject is listed (`auth.certificates`). Answers a
 * principal or a refusal in RFC 6750's terms, which the HTTP layer turns into a 401/403 with WWW-Authenticate.
 */

/** What the headers of a request carry that may be a credential. */
export interface PresentedCredentials {
  readonly authorization?: string | undefined
  readonly apiKey?: string | string[] | undefined
  /** The common name of a client certificate the TLS handshake verified (mTLS), if any. */
  readonly certificateSubject?: string | undefined
}

export interface AuthRefusal {
  readonly status: 400 | 401 | 403 | 503
  /** RFC 6750's error code; absent when the request carried no credential at all (§3.1). */
  readonly error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope'
  readonly message: string
}

export type AuthOutcome = { readonly principal: Principal } | { readonly refused: AuthRefusal }

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export class Authenticator {
  readonly #keys: ApiKeys
  readonly #jwt: JwtVerifier | undefined
  readonly #certificates: ReadonlyMap<string, Principal>

  constructor (private readonly settings: AuthSettings) {
    this.#keys = new ApiKeys(settings.apiKeys)
    this.#certificates = new Map(settings.certificates.map(c => [c.subject, Object.freeze({
      kind: 'certificate' as const, id: c.subject, roles: Object.freeze([...c.roles]), scopes: Object.freeze([])
    })]))
    this.#jwt = settings.jwt === null ? undefined : new JwtVerifier(settings.jwt)
  }

  /** What a client is told to send. */
  get accepted (): string {
    const ways = []
    if (this.#keys.size > 0) ways.push('an API key as "X-API-Key: <key>" or "Authorization: Bearer <key>"')
    if (this.#jwt !== undefined) ways.push('a JWT as "Authorization: Bearer <token>"')
    if (this.#certificates.size > 0) ways.push('a client certificate')
    return ways.join(', or ')
  }

  /** Never rejects. */
  async authenticate (presented: PresentedCredentials): Promise<AuthOutcome> {
    const { authorization, apiKey } = presented
    if (Array.isArray(apiKey)) return refused(400, 'invalid_request', 'send one X-API-Key header, not several')
    if (apiKey !== undefined && authorization !== undefined) {
      return refused(400, 'invalid_request', 'send one credential: X-API-Key or Authorization, not both')
    }
    if (apiKey !== undefined) {
      const principal = this.#keys.size > 0 ? this.#keys.match(apiKey) : undefined
      return principal === undefined ? refused(401, 'invalid_token', 'the X-API-Key is not a key this gateway knows') : { principal }
    }
    if (authorization === undefined || authorization === '') {
      // A header credential, when sent, decides; a verified client certificate is the credential of a request without one.
      const byCertificate = presented.certificateSubject === undefined ? undefined : this.#certificates.get(presented.certificateSubject)
      if (byCertificate !== undefined) return { principal: byCertificate }
      return refused(401, undefined, `authentication required: send ${this.accepted}`)
    }
    const space = authorization.indexOf(' ')
    if (space === -1) {
      // No scheme at all (a bare key, "Bearer" alone): the value may be the secret itself, so it is never echoed.
      return refused(401, 'invalid_request', `the Authorization header needs a scheme and a credential; send ${this.accepted}`)
    }
    const scheme = authorization.slice(0, space)
    if (scheme.toLowerCase() !== 'bearer') {
      const named = /^[A-Za-z][A-Za-z0-9-]{0,19}$/.test(scheme) ? ` ${scheme}` : ''
      return refused(401, 'invalid_request', `the Authorization scheme${named} is not accepted; send ${this.accepted}`)
    }
    const credential = authorization.slice(space + 1).trim()
    if (credential === '') return refused(401, 'invalid_request', 'the Authorization header has no bearer credential')
    if (this.#keys.size > 0) {
      const principal = this.#keys.match(credential)
      if (principal !== undefined) return { principal }
    }
    if (this.#jwt === undefined || !JWT_SHAPE.test(credential)) {
      return refused(401, 'invalid_token', this.#jwt === undefined ? 'the bearer credential is not a key this gateway knows' : 'the bearer credential is neither a known API key nor a JWT')
    }
    let principal: Principal
    try {
      principal = await this.#jwt.verify(credential)
    } catch (err) {
      if (err instanceof KeysUnavailable) return refused(503, undefined, err.message)
      if (err instanceof TokenRefused) return refused(401, 'invalid_token', err.message)
      return refused(401, 'invalid_token', 'the token could not be verified')
    }
    const required = this.settings.oauth?.requiredScopes ?? []
    const missing = required.filter(scope => !principal.scopes.includes(scope))
    if (missing.length > 0) return refused(403, 'insufficient_scope', `the token lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(' ')}`)
    return { principal }
  }
}

function refused (status: AuthRefusal['status'], error: AuthRefusal['error'], message: string): AuthOutcome {
  return { refused: error === undefined ? { status, message } : { status, error, message } }
}
