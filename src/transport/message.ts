import type { JsonRpcId } from '../../schemas/jsonrpc.js'
import { ERR_BATCH_TOO_LARGE, ERR_INVALID_REQUEST, ERR_JSON_TOO_DEEP, ERR_PARSE } from '../errors.js'
import { JsonTooDeepError, parseJson } from '../json.js'

/**
 * The one check of what clients send, for every transport (Streamable HTTP, legacy SSE, WebSocket): JSON read
 * with a nesting limit, a batch bounded in size, and each message a JSON-RPC 2.0 request, notification or response
 * with the right types (an id is a string or an integer, params an object, an error a code and a message). A
 * message that fails is answered with the spec's error and, when it had a valid one, its own id.
 */

export interface MessageLimits {
  /** Deepest nesting of arrays and objects accepted in one body or frame. */
  readonly maxJsonDepth: number
  /** Most messages in one batch. */
  readonly maxBatch: number
}

/** A message (or a body) refused: the error to answer it with, and the id to answer with (null when unknown). */
export class InvalidMessage {
  constructor (readonly id: JsonRpcId | null, readonly error: Error) {}
}

/** Parses a body or a frame; an InvalidMessage for text that is not JSON or is nested too deep. */
export function parseMessageText (text: string, limits: MessageLimits): unknown {
  try {
    return parseJson(text, limits.maxJsonDepth)
  } catch (err) {
    if (err instanceof JsonTooDeepError) return new InvalidMessage(validId(err.value), new ERR_JSON_TOO_DEEP(limits.maxJsonDepth))
    return new InvalidMessage(null, new ERR_PARSE((err as Error).message))
  }
}

/** The messages of a parsed body: one, or the elements of a batch; an InvalidMessage when the body as a whole is refused. */
export function bodyMessages (body: unknown, limits: MessageLimits): { batch: boolean, messages: readonly unknown[] } | InvalidMessage {
  if (body instanceof InvalidMessage) return body
  if (!Array.isArray(body)) return { batch: false, messages: [body] }
  if (body.length === 0) return new InvalidMessage(null, new ERR_INVALID_REQUEST('an empty batch carries no message'))
  if (body.length > limits.maxBatch) return new InvalidMessage(null, new ERR_BATCH_TOO_LARGE(body.length, limits.maxBatch))
  return { batch: true, messages: body }
}

/**
 * Checks one message in place; undefined when it is a valid request (method and id), notification (method, no id)
 * or response (id, and a result or an error).
 */
export function invalidMessage (value: unknown): InvalidMessage | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return new InvalidMessage(null, new ERR_INVALID_REQUEST('a JSON-RPC message is an object'))
  }
  const message = value as Record<string, unknown>
  const hasId = message.id !== undefined
  const id = validId(message)
  if (hasId && id === null && !(message.id === null && message.method === undefined)) {
    return new InvalidMessage(null, new ERR_INVALID_REQUEST('id must be a string or an integer'))
  }
  if (message.jsonrpc !== '2.0') return new InvalidMessage(id, new ERR_INVALID_REQUEST('jsonrpc must be "2.0"'))
  const method = message.method
  if (method !== undefined) {
    if (typeof method !== 'string' || method.length === 0) return new InvalidMessage(id, new ERR_INVALID_REQUEST('method must be a non-empty string'))
    const params = message.params
    if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) {
      return new InvalidMessage(id, new ERR_INVALID_REQUEST('params must be an object'))
    }
    if (message.result !== undefined || message.error !== undefined) {
      return new InvalidMessage(id, new ERR_INVALID_REQUEST('a request or notification carries no result or error'))
    }
    return undefined
  }
  if (!hasId) {
    return new InvalidMessage(null, new ERR_INVALID_REQUEST('a message needs a method (request or notification) or an id with a result or error (response)'))
  }
  if ((message.result === undefined) === (message.error === undefined)) {
    return new InvalidMessage(id, new ERR_INVALID_REQUEST('a response carries either a result or an error'))
  }
  const error = message.error as Record<string, unknown> | undefined
  if (error !== undefined && (error === null || typeof error !== 'object' || !Number.isInteger(error.code) || typeof error.message !== 'string')) {
    return new InvalidMessage(id, new ERR_INVALID_REQUEST('an error response needs error.code (an integer) and error.message (a string)'))
  }
  return undefined
}

/** The message's id if it is one JSON-RPC allows (a string or an integer), else null. */
function validId (value: unknown): JsonRpcId | null {
  if (value === null || typeof value !== 'object') return null
  const id = (value as { id?: unknown }).id
  return typeof id === 'string' || Number.isSafeInteger(id) ? id as JsonRpcId : null
}
