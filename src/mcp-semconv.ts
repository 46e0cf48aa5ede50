import { toRpcError } from './errors.js'
import { RawResult } from './raw-result.js'

/**
 * How a request ended, in the words of the OpenTelemetry MCP conventions — `error.type`: the JSON-RPC error's code
 * as a string, `tool_error` for a tool result with `isError`, nothing for a success — shared by the spans and the
 * `mcp_*_operation_duration_seconds` metrics. An upstream chooses its error codes: only those of the range JSON-RPC
 * reserves (-32768..-32000, where MCP's and the gateway's are) are kept as they are, any other is `_OTHER`, so a
 * metric label cannot grow without bound.
 */

export const TOOL_ERROR = 'tool_error'
export const OTHER = '_OTHER'

/** error.type of an upstream attempt that got no JSON-RPC error, by the forwarder's outcome ('' for success). */
export const OUTCOME_ERROR_TYPES = Object.freeze({
  success: '', tool_error: TOOL_ERROR, rpc_error: OTHER, timeout: 'timeout', cancelled: 'cancelled', unavailable: 'unavailable', failure: OTHER
})

/**
 * The error.type of a client request's answer: `result` when it was answered, `error` when it failed; undefined: a
 * success. A request the client withdrew is `cancelled`.
 */
export function errorType (result: unknown, error?: unknown): string | undefined {
  if (error !== undefined) return (error as { code?: unknown }).code === 'MCPGW_ERR_REQUEST_CANCELLED' ? 'cancelled' : codeType(errorCode(error))
  return isToolError(result) ? TOOL_ERROR : undefined
}

/** The JSON-RPC code `error` is answered with (undefined when it cannot be read). */
export function errorCode (error: unknown): number | undefined {
  return rpcErrorOf(error)?.code
}

/** The JSON-RPC error `error` is answered with (undefined when it cannot be read). */
export function rpcErrorOf (error: unknown): { code: number, message: string } | undefined {
  try {
    return toRpcError(error)
  } catch {
    return undefined
  }
}

/** A JSON-RPC error code as an error.type of bounded cardinality. */
export function codeType (code: number | undefined): string {
  return code !== undefined && Number.isInteger(code) && code >= -32768 && code <= -32000 ? String(code) : OTHER
}

export function isToolError (result: unknown): boolean {
  return result instanceof RawResult ? result.isToolError : (result as { isError?: unknown } | undefined)?.isError === true
}
