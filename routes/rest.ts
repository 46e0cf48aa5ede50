import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Static } from 'typebox'
import type { ClientContext } from '../src/client-context.js'
import { LATEST_PROTOCOL_VERSION } from '../src/protocol.js'
import { CallToolBody, CallToolReply, ErrorReply, ListBody, ResourcesListReply, ToolsListReply } from '../schemas/rest.js'

/**
 * Plain JSON over HTTP for scripts and clients without an MCP SDK: list tools and resources, call a tool.
 * No session is needed; calls use the gateway's shared session with each service. Errors are Fastify's error
 * shape with the status the failure deserves (404 unknown tool, 400 bad arguments, 429 with Retry-After over a rate
 * limit, 502/503/504 upstream trouble).
 */

const errors = { 400: ErrorReply, 404: ErrorReply, 429: ErrorReply, 502: ErrorReply, 503: ErrorReply, 504: ErrorReply }

export default async function restRoutes (fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const proxy = app.mcpProxy

  // The configured limit, also when embedded in an app whose server-wide bodyLimit differs.
  app.addHook('onRoute', (route) => { route.bodyLimit ??= app.mcpConfig.bodyLimit })
  app.addHook('onRequest', app.mcpAuth.guardOrigin)
  if (app.mcpAuth.enabled) app.addHook('onRequest', app.mcpAuth.authenticate)

  // Lists and results are sent as the JSON text the engine holds (a page of the catalog, the upstream's own
  // bytes), not parsed and re-serialized: Fastify sends a string payload as it is (the reply schema still documents
  // it), hence the casts.
  app.post('/mcp/tools/list', {
    schema: { body: ListBody, response: { 200: ToolsListReply, ...errors } }
  }, async (request, reply) => {
    const json = await proxy.listJson('tools', request.body?.cursor, callerOf(request), request.headers)
    return reply.type('application/json').send(json as unknown as Static<typeof ToolsListReply>)
  })

  app.post('/mcp/tools/call', {
    schema: { body: CallToolBody, response: { 200: CallToolReply, ...errors } }
  }, async (request, reply) => {
    const json = await proxy.callToolJson(request.body.name, request.body.arguments, { client: callerOf(request), carrier: request.headers })
    return reply.type('application/json').send(json as unknown as Static<typeof CallToolReply>)
  })

  app.post('/mcp/resources/list', {
    schema: { body: ListBody, response: { 200: ResourcesListReply, ...errors } }
  }, async (request, reply) => {
    const json = await proxy.listJson('resources', request.body?.cursor, callerOf(request), request.headers)
    return reply.type('application/json').send(json as unknown as Static<typeof ResourcesListReply>)
  })
}

/** The client context of a REST request: no session, so the latest protocol and no capabilities; who authenticated. */
function callerOf (request: FastifyRequest): ClientContext {
  return { principal: request.principal, protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, address: request.ip }
}
