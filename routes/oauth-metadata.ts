import type { FastifyInstance } from 'fastify'
import { metadataDocument, metadataPaths } from '../src/auth/protected-resource.js'

/**
 * The OAuth 2.0 Protected Resource Metadata (RFC 9728) of this gateway, registered when `auth.oauth` is configured:
 * MCP clients that get a 401 follow its `resource_metadata` link here to learn which authorization server to ask
 * for a token. Served at the bare well-known path and at the one suffixed with the resource's path (`/mcp`), open
 * to all (it is what a client reads before it has a token).
 */
export default async function oauthMetadataRoutes (app: FastifyInstance) {
  const oauth = app.mcpConfig.auth?.oauth
  if (oauth === undefined || oauth === null) return
  const document = JSON.stringify(metadataDocument(oauth, app.mcpConfig.name))
  for (const path of metadataPaths(oauth.resource)) {
    app.get(path, async (request, reply) => reply.type('application/json').header('cache-control', 'max-age=3600').send(document))
  }
}
