import { createPublicKey, type KeyObject } from 'node:crypto'
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from 'jose'
import { LRUCache } from 'lru-cache'
import type { JwtSettings } from '../config/types.js'
import type { Principal } from '../client-context.js'

/**
 * Verifies JWT bearer tokens with `jose`: the signature with the configured key (a shared secret, a PEM public key,
 * or the issuer's JWKS — fetched once, cached for ten minutes, fetched again for an unknown `kid` at most once per
 * `jwksCooldownSec`, never per request), only the configured algorithms (`alg: none` and HS/RS confusion are refused by jose's key checks), and
 * the claims: `exp`/`nbf` with the configured tolerance, `iss`, `aud`, and a `sub` to name the principal. A token
 * that verified is remembered until it expires (at most five minutes), so a session's requests do not pay for the
 * signature again.
 */

/** A token failed verification; `message` says why in words a client can act on. */
export class TokenRefused extends Error {}

/** The issuer's keys could not be fetched: the token may be fine, the gateway cannot tell now. */
export class KeysUnavailable extends Error {}

/** Longest token taken: real ones are a few kilobytes; a longer one is refused before any parsing. */
export const MAX_TOKEN_LENGTH = 16 * 1024
const REMEMBER_AT_MOST = 5 * 60_000
/** Most roles and scopes taken from one token. */
const MAX_CLAIM_ITEMS = 256

export class JwtVerifier {
  readonly #key: Uint8Array | KeyObject | JWTVerifyGetKey
  readonly #verified = new LRUCache<string, Principal>({ max: 10_000, ttlAutopurge: false })

  constructor (private readonly settings: JwtSettings) {
    const key = settings.key
    if (key.kind === 'secret') this.#key = new TextEncoder().encode(key.secret)
    else if (key.kind === 'publicKey') this.#key = createPublicKey(key.pem)
    else {
      this.#key = createRemoteJWKSet(new URL(key.url), {
        timeoutDuration: 5000, cooldownDuration: settings.jwksCooldownSec * 1000, cacheMaxAge: 600_000
      })
    }
  }

  /** The principal the token names; rejects with TokenRefused or KeysUnavailable. */
  async verify (token: string): Promise<Principal> {
    const known = this.#verified.get(token)
    if (known !== undefined) return known
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenRefused(`the token is longer than ${MAX_TOKEN_LENGTH} characters`)
    const { settings } = this
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, this.#key as Uint8Array, {
        algorithms: [...settings.algorithms],
        ...(settings.issuer !== null ? { issuer: settings.issuer } : {}),
        ...(settings.audience !== null ? { audience: [...settings.audience] } : {}),
        clockTolerance: settings.clockToleranceSec
      }))
    } catch (err) {
      throw refusal(err, settings.key.kind === 'jwks')
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenRefused('the token has no sub claim to name its holder')
    const principal: Principal = Object.freeze({
      kind: 'jwt',
      id: payload.sub,
      roles: Object.freeze(strings(claimAt(payload, settings.rolesClaim))),
      scopes: Object.freeze(strings(payload.scope ?? payload.scp))
    })
    const left = typeof payload.exp === 'number' ? payload.exp * 1000 - Date.now() : REMEMBER_AT_MOST
    if (left > 0) this.#verified.set(token, principal, { ttl: Math.min(left, REMEMBER_AT_MOST) })
    return principal
  }
}

function refusal (err: unknown, remoteKeys: boolean): Error {
  if (err instanceof errors.JWTExpired) return new TokenRefused('the token has expired')
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim
    if (claim === 'iss') return new TokenRefused('the token was issued by another issuer than this gateway accepts')
    if (claim === 'aud') return new TokenRefused('the token is for another audience (resource) than this gateway')
    if (claim === 'nbf') return new TokenRefused('the token is not valid yet')
    return new TokenRefused(`the token's ${claim} claim is invalid: ${err.reason}`)
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenRefused('the token is signed with an algorithm this gateway does not accept')
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenRefused('the token is signed with a key the issuer does not publish')
  if (remoteKeys && (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError))) {
    return new KeysUnavailable(`the issuer's keys (JWKS) could not be fetched: ${err instanceof Error ? err.message : String(err)}`)
  }
  return new TokenRefused('the token is malformed or its signature does not verify')
}

/** The claim at a dotted path (e.g. realm_access.roles). */
function claimAt (payload: JWTPayload, path: readonly string[]): unknown {
  let value: unknown = payload
  for (const part of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/** Roles or scopes: an array of strings, or one string of space-separated items. */
function strings (value: unknown): string[] {
  const items = typeof value === 'string' ? value.split(' ') : Array.isArray(value) ? value : []
  return items.filter((item): item is string => typeof item === 'string' && item !== '').slice(0, MAX_CLAIM_ITEMS)
}
