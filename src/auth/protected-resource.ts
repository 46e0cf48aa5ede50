import type { OAuthSettings } from '../config/types.js'
import type { AuthRefusal } from './authenticator.js'

/**
 * The MCP authorization spec's resource-server side: the Protected Resource Metadata document (RFC 9728) that
 * tells a client which authorization servers issue tokens for this gateway, where it is published, and the
 * `WWW-Authenticate` challenge of a refusal (RFC 6750), which points to it. URLs come from the configured resource,
 * never from the request's Host header, which the client controls.
 */

export const METADATA_PATH = '/.well-known/oauth-protected-resource'

/** Where the metadata of `resource` is published: the well-known path inserted before the resource's path. */
export function metadataUrl (resource: string): string {
  const url = new URL(resource)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  return `${url.origin}${METADATA_PATH}${path}`
}

/** The paths the metadata is served at: the bare well-known path and the one suffixed with the resource's path. */
export function metadataPaths (resource: string): string[] {
  const suffixed = new URL(metadataUrl(resource)).pathname
  return suffixed === METADATA_PATH ? [METADATA_PATH] : [METADATA_PATH, suffixed]
}

export function metadataDocument (oauth: OAuthSettings, name: string): Record<string, unknown> {
  return {
    resource: oauth.resource,
    authorization_servers: oauth.authorizationServers,
    ...(oauth.scopesSupported.length > 0 ? { scopes_supported: oauth.scopesSupported } : {}),
    bearer_methods_supported: ['header'],
    resource_name: name
  }
}

/** The WWW-Authenticate value of a refusal. */
export function challenge (refusal: AuthRefusal, oauth: OAuthSettings | null): string {
  const params = ['realm="mcp-gateway"']
  if (oauth !== null) params.push(`resource_metadata="${metadataUrl(oauth.resource)}"`)
  if (refusal.error !== undefined) params.push(`error="${refusal.error}"`, `error_description="${quoted(refusal.message)}"`)
  if (oauth !== null && oauth.requiredScopes.length > 0) params.push(`scope="${oauth.requiredScopes.join(' ')}"`)
  return 'Bearer ' + params.join(', ')
}

/** A quoted-string's content: no quotes or backslashes, printable ASCII only (RFC 6750 §3). */
function quoted (text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')
}
