import Type, { type Static } from 'typebox'

/**
 * JSON-RPC 2.0 envelopes as MCP uses them. The route validates every client message against `JsonRpcBody` with
 * Fastify's compiled validator; what the message means (request, notification, response) is decided after.
 */

export const JsonRpcId = Type.Union([Type.String(), Type.Integer()])
export type JsonRpcId = Static<typeof JsonRpcId>

export const JsonRpcErrorObject = Type.Object({
  code: Type.Integer(),
  message: Type.String(),
  data: Type.Optional(Type.Unknown())
})

/** One message: `method` makes it a request (with `id`) or a notification; `result`/`error` make it a response. */
export const JsonRpcMessage = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Optional(JsonRpcId),
  method: Type.Optional(Type.String({ minLength: 1 })),
  params: Type.Optional(Type.Object({}, { additionalProperties: true })),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(JsonRpcErrorObject)
}, { additionalProperties: true })
export type JsonRpcMessage = Static<typeof JsonRpcMessage>

/** A POST body: one message, or a batch (JSON-RPC batching is part of protocol 2025-03-26). */
export const JsonRpcBody = Type.Union([JsonRpcMessage, Type.Array(JsonRpcMessage, { minItems: 1 })])
export type JsonRpcBody = Static<typeof JsonRpcBody>

export type Params = Record<string, unknown>

export interface JsonRpcRequest {
  jsonrpc: '2.0'
  id: JsonRpcId
  method: string
  params?: Params
}

export interface JsonRpcNotification {
  jsonrpc: '2.0'
  method: string
  params?: Params
}

export interface JsonRpcResponse {
  jsonrpc: '2.0'
  id: JsonRpcId | null
  result?: unknown
  error?: Static<typeof JsonRpcErrorObject>
}
