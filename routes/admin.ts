import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { AdminServer, AdminServerList, PatchServerBody, RegisterServerBody, ServerIdParams, UpdateServerBody } from '../schemas/admin.js'
import { ErrorReply } from '../schemas/rest.js'
import type { UpstreamDefinition } from '../src/config/types.js'

/**
 * The admin API: list, register, replace, switch (enable, disable, drain) and remove upstream servers at run time. The gateway only registers these
 * routes when an admin key is configured, and every request must present it. Changes reach the catalog (and
 * clients, via list_changed) without a restart. Header and env values are redacted in answers.
 */

const errors = { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply }

export default async function adminRoutes (fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const registry = app.mcpRegistry
  const proxy = app.mcpProxy

  app.addHook('onRoute', (route) => { route.bodyLimit ??= app.mcpConfig.bodyLimit })
  app.addHook('onRequest', app.mcpAuth.guardOrigin)
  app.addHook('onRequest', app.mcpAuth.requireAdmin)

  const reportsById = () => new Map(proxy.upstreams().map(report => [report.id, report]))

  const describe = (definition: UpstreamDefinition, reports = reportsById()) => {
    const report = reports.get(definition.id)
    return {
      id: definition.id,
      state: report?.state ?? 'stopped',
      ...(report?.reason !== undefined ? { reason: report.reason } : {}),
      definition: redact(definition)
    }
  }

  app.get('/admin/servers', { schema: { response: { 200: AdminServerList, 401: ErrorReply } } }, async () => {
    const reports = reportsById()
    return { servers: registry.list().map(definition => describe(definition, reports)) }
  })

  app.post('/admin/servers/register', {
    schema: { body: RegisterServerBody, response: { 201: AdminServer, ...errors } }
  }, async (request, reply) => {
    const server = registry.add(request.body)
    reply.code(201)
    return describe(server)
  })

  app.put('/admin/servers/:id', {
    schema: { params: ServerIdParams, body: UpdateServerBody, response: { 200: AdminServer, ...errors } }
  }, async (request, reply) => {
    const { id } = request.params
    if (request.body.id !== undefined && request.body.id !== id) {
      return reply.code(400).send({ statusCode: 400, code: 'MCPGW_ERR_SERVER_INVALID', error: 'Bad Request', message: `Invalid server definition: body id ${JSON.stringify(request.body.id)} differs from the path id ${JSON.stringify(id)}` })
    }
    return describe(registry.update(id, request.body))
  })

  app.patch('/admin/servers/:id', {
    schema: { params: ServerIdParams, body: PatchServerBody, response: { 200: AdminServer, ...errors } }
  }, async (request) => describe(registry.patch(request.params.id, request.body)))

  app.delete('/admin/servers/:id', {
    schema: { params: ServerIdParams, response: { 200: AdminServer, ...errors } }
  }, async (request) => {
    const removed = registry.remove(request.params.id)
    return { id: removed.id, state: 'removed', definition: redact(removed) }
  })
}

function redact (definition: UpstreamDefinition): UpstreamDefinition {
  const hide = (record: Readonly<Record<string, string>>) => Object.fromEntries(Object.keys(record).map(k => [k, '[redacted]']))
  return { ...definition, headers: hide(definition.headers), env: hide(definition.env) }
}
