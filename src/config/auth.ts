import { createHash, createPublicKey } from 'node:crypto'
import type { AuthConfig } from '../../schemas/config.js'
import type { ApiKeyDefinition, AuthSettings, JwtKeySource, JwtSettings, OAuthSettings, RoleSettings } from './types.js'

/**
 * The `auth` section after validation: API keys reduced to their SHA-256, one JWT key source with the algorithms
 * that fit it, the OAuth resource-server settings. Every problem is reported by field, in one run.
 */

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512']
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

export function sha256Hex (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

export function normalizeAuth (file: AuthConfig | undefined, problems: string[]): AuthSettings | null {
  if (file === undefined) return null
  const apiKeys = normalizeApiKeys(file.apiKeys ?? [], problems)
  const jwt = file.jwt === undefined ? null : normalizeJwt(file.jwt, file.oauth?.resource, problems)
  const oauth = file.oauth === undefined ? null : normalizeOAuth(file.oauth, problems)
  if (apiKeys.length === 0 && file.jwt === undefined && (file.certificates ?? []).length === 0) {
    problems.push('auth: needs apiKeys, jwt or certificates (with none, no client could authenticate); remove auth to run without authentication')
  }
  if (oauth !== null && file.jwt === undefined) {
    problems.push('auth.oauth: needs auth.jwt, whose keys validate the access tokens (jwksUrl: the authorization server\'s JWKS)')
  }
  const roles = file.roles === undefined ? null : normalizeRoles(file.roles)
  if (roles !== null) {
    const undefinedRoles = (field: string, named: readonly string[] = []) => {
      const unknown = named.filter(role => !Object.hasOwn(roles, role))
      if (unknown.length > 0) problems.push(`${field}: ${unknown.map(r => JSON.stringify(r)).join(', ')} not defined in auth.roles`)
    }
    apiKeys.forEach((key, i) => undefinedRoles(`auth.apiKeys[${i}].roles`, key.roles))
    file.certificates?.forEach((c, i) => undefinedRoles(`auth.certificates[${i}].roles`, c.roles))
  }
  const certificates = (file.certificates ?? []).map(c => ({ subject: c.subject, roles: c.roles ?? [] }))
  return { apiKeys, certificates, jwt, oauth, openMetrics: file.openMetrics ?? false, roles }
}

function normalizeApiKeys (keys: NonNullable<AuthConfig['apiKeys']>, problems: string[]): ApiKeyDefinition[] {
  const names = new Map<string, number>()
  const digests = new Map<string, number>()
  const result: ApiKeyDefinition[] = []
  keys.forEach((key, i) => {
    const field = `auth.apiKeys[${i}]`
    if ((key.key === undefined) === (key.keyHash === undefined)) {
      problems.push(`${field}: give either key or keyHash (the key's SHA-256 in hex), not ${key.key === undefined ? 'neither' : 'both'}`)
      return
    }
    const digest = key.keyHash?.toLowerCase() ?? sha256Hex(key.key as string)
    const sameName = names.get(key.name)
    if (sameName !== undefined) problems.push(`${field}: name ${JSON.stringify(key.name)} is already used by auth.apiKeys[${sameName}]`)
    const sameKey = digests.get(digest)
    if (sameKey !== undefined) problems.push(`${field}: the same key as auth.apiKeys[${sameKey}]; each key must be unique`)
    names.set(key.name, i)
    digests.set(digest, i)
    result.push({ name: key.name, digest, roles: key.roles ?? [] })
  })
  return result
}

function normalizeJwt (jwt: NonNullable<AuthConfig['jwt']>, resource: string | undefined, problems: string[]): JwtSettings | null {
  const sources = [jwt.secret, jwt.publicKey, jwt.jwksUrl].filter(s => s !== undefined).length
  if (sources !== 1) {
    problems.push(`auth.jwt: give exactly one of secret, publicKey or jwksUrl (${sources === 0 ? 'none is' : 'more than one is'} set)`)
    return null
  }
  let key: JwtKeySource
  if (jwt.secret !== undefined) key = { kind: 'secret', secret: jwt.secret }
  else if (jwt.publicKey !== undefined) {
    try {
      createPublicKey(jwt.publicKey)
    } catch (err) {
      problems.push(`auth.jwt.publicKey: not a PEM public key (${(err as Error).message})`)
    }
    key = { kind: 'publicKey', pem: jwt.publicKey }
  } else {
    const url = jwt.jwksUrl as string
    if (!isHttpUrl(url)) problems.push(`auth.jwt.jwksUrl: ${JSON.stringify(url)} is not an http(s) URL`)
    key = { kind: 'jwks', url }
  }
  const fitting = key.kind === 'secret' ? HMAC_ALGORITHMS : ASYMMETRIC_ALGORITHMS
  const algorithms = jwt.algorithms ?? fitting
  const misfits = algorithms.filter(a => !fitting.includes(a))
  if (misfits.length > 0) {
    problems.push(`auth.jwt.algorithms: ${misfits.join(', ')} cannot be verified with ${key.kind === 'secret' ? 'a shared secret' : 'a public key'}; ` +
      `use ${fitting.join(', ')}`)
  }
  const audience = jwt.audience === undefined ? (resource === undefined ? null : [resource]) : [jwt.audience].flat()
  return {
    key,
    issuer: jwt.issuer ?? null,
    audience,
    algorithms,
    rolesClaim: (jwt.rolesClaim ?? 'roles').split('.'),
    clockToleranceSec: jwt.clockToleranceSec ?? 0,
    jwksCooldownSec: jwt.jwksCooldownSec ?? 30
  }
}

function normalizeOAuth (oauth: NonNullable<AuthConfig['oauth']>, problems: string[]): OAuthSettings {
  if (!isHttpUrl(oauth.resource)) problems.push(`auth.oauth.resource: ${JSON.stringify(oauth.resource)} is not an http(s) URL`)
  else if (new URL(oauth.resource).hash !== '') problems.push('auth.oauth.resource: a resource URL has no fragment (RFC 8707)')
  oauth.authorizationServers.forEach((server, i) => {
    if (!isHttpUrl(server)) problems.push(`auth.oauth.authorizationServers[${i}]: ${JSON.stringify(server)} is not an http(s) URL`)
  })
  const scopesSupported = oauth.scopesSupported ?? []
  const requiredScopes = oauth.requiredScopes ?? []
  return {
    resource: oauth.resource,
    authorizationServers: oauth.authorizationServers,
    scopesSupported: [...new Set([...scopesSupported, ...requiredScopes])],
    requiredScopes
  }
}

function normalizeRoles (roles: NonNullable<AuthConfig['roles']>): Record<string, RoleSettings> {
  const result: Record<string, RoleSettings> = Object.create(null)
  const grant = (g: { allow?: string[], deny?: string[] } | undefined) => ({ allow: g?.allow ?? [], deny: g?.deny ?? [] })
  for (const [name, role] of Object.entries(roles)) {
    result[name] = { tools: grant(role.tools), resources: grant(role.resources), prompts: grant(role.prompts), admin: role.admin ?? false }
  }
  return result
}

function isHttpUrl (text: string): boolean {
  try {
    const url = new URL(text)
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}
