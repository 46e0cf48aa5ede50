import Type from 'typebox'
import { ServerConfig, ServerId } from './config.js'

/** The admin API: servers in the config file's `servers[]` shape, secrets redacted on the way out. */

export const ServerIdParams = Type.Object({ id: ServerId })

export const RegisterServerBody = ServerConfig

/** PUT replaces the whole definition; the id comes from the path (a body id must match it). */
export const UpdateServerBody = Type.Object({
  ...ServerConfig.properties,
  id: Type.Optional(ServerId)
}, { additionalProperties: false })

/** PATCH switches a server without replacing it: on or off, or drained (weight 0) and back. */
export const PatchServerBody = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'false: disconnected and out of the catalog; true: connected again' })),
  weight: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 1000 }), Type.Null()], {
    description: '0 drains it (no new calls; its clients\' own sessions stay); null: back to the weight its definition gives (undrain)'
  }))
}, { additionalProperties: false, minProperties: 1 })

export const AdminServer = Type.Object({
  id: Type.String(),
  state: Type.String(),
  reason: Type.Optional(Type.String()),
  definition: Type.Unknown()
})

export const AdminServerList = Type.Object({ servers: Type.Array(AdminServer) })
