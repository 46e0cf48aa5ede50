import type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse, Params } from '../schemas/jsonrpc.js'
import type { RpcErrorObject } from './errors.js'

/** Classifying and building JSON-RPC 2.0 messages; the hot path builds answers as strings, never via a schema. */

export function isRequest (msg: JsonRpcMessage): msg is JsonRpcMessage & JsonRpcRequest {
  return msg.method !== undefined && msg.id !== undefined
}

export function isNotification (msg: JsonRpcMessage): msg is JsonRpcMessage & JsonRpcNotification {
  return msg.method !== undefined && msg.id === undefined
}

export function isResponse (msg: JsonRpcMessage): msg is JsonRpcMessage & JsonRpcResponse {
  return msg.method === undefined && (msg.result !== undefined || msg.error !== undefined)
}

export function resultMessage (id: JsonRpcId, result: unknown): string {
  return '{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"result":' + JSON.stringify(result) + '}'
}

export function errorMessage (id: JsonRpcId | null, error: RpcErrorObject): string {
  return '{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"error":' + JSON.stringify(error) + '}'
}

export function notificationMessage (method: string, params?: Params): JsonRpcNotification {
  return params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params }
}

/** Reads `_meta.progressToken` from request params, if the client asked for progress. */
export function progressTokenOf (params: Params | undefined): string | number | undefined {
  const meta = params?._meta as { progressToken?: string | number } | undefined
  return meta?.progressToken
}
