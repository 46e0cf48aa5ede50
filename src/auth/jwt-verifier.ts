import { createPublicKey, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from 'jose'
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
    else this.#key = issuerKeys(key.url, settings.jwksCooldownSec * 1000)
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
        clockTolerance: settings.clockToleranceSec,
        // A token without an expiry would be good forever: refused.
        requiredClaims: ['exp']
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
    // exp is there (a required claim) and a number (jose checked it); within the clock tolerance it may have passed.
    const left = (payload.exp as number) * 1000 - Date.now()
    if (left > 0) this.#verified.set(token, principal, { ttl: Math.min(left, REMEMBER_AT_MOST) })
    return principal
  }
}

/**
 * The issuer's keys, from its JWKS through jose's remote key set (cached, refetched for an unknown kid at most once
 * per cooldown after a success) with what jose does not do: after a failed fetch, no new fetch for a cooldown
 * either (a failing issuer is not hit once per request), and meanwhile the keys of the last good fetch still verify.
 */
function issuerKeys (url: string, cooldown: number): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(url), { timeoutDuration: 5000, cooldownDuration: cooldown, cacheMaxAge: 600_000 })
  let failedAt = -Infinity
  let lastGood: JWTVerifyGetKey | undefined
  let keptAt = -Infinity
  return async (header, token) => {
    if (Date.now() - failedAt < cooldown) {
      if (lastGood !== undefined) return lastGood(header, token)
      throw new KeysUnavailable('the issuer\'s keys (JWKS) could not be fetched a moment ago; not asking again yet')
    }
    try {
      const key = await remote(header, token)
      // A copy of the keys for bad times, renewed at most every 10 s (jwks() clones the set).
      if (Date.now() - keptAt > 10_000) {
        const jwks = remote.jwks()
        if (jwks !== undefined) lastGood = createLocalJWKSet(jwks)
        keptAt = Date.now()
      }
      return key
    } catch (err) {
      if (!fetchFailed(err)) throw err
      failedAt = Date.now()
      if (lastGood !== undefined) return lastGood(header, token)
      throw new KeysUnavailable(`the issuer's keys (JWKS) could not be fetched: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
}

/** Whether fetching the JWKS failed (unreachable, timed out, not 200, not a key set), as opposed to a token's fault. */
function fetchFailed (err: unknown): boolean {
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return false
  return err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError) ||
    err.code === 'ERR_JOSE_GENERIC'
}

function refusal (err: unknown, remoteKeys: boolean): Error {
  if (err instanceof errors.JWTExpired) return new TokenRefused('the token has expired')
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim
    if (claim === 'exp') return new TokenRefused('the token has no expiry (exp); this gateway accepts only tokens that expire')
    if (claim === 'iss') return new TokenRefused('the token was issued by another issuer than this gateway accepts')
    if (claim === 'aud') return new TokenRefused('the token is for another audience (resource) than this gateway')
    if (claim === 'nbf') return new TokenRefused('the token is not valid yet')
    return new TokenRefused(`the token's ${claim} claim is invalid: ${err.reason}`)
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenRefused('the token is signed with an algorithm this gateway does not accept')
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenRefused('the token is signed with a key the issuer does not publish')
  if (err instanceof KeysUnavailable) return err
  if (remoteKeys && fetchFailed(err)) {
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
