import underPressure from '@fastify/under-pressure'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ERR_OVERLOADED } from '../src/errors.js'

/**
 * The overload guard of every gateway route (@fastify/under-pressure): when the event loop lags more than
 * `overload.maxEventLoopDelayMs` (default 1000), or the heap or RSS passes its bound (off by default), requests are
 * answered 503 with Retry-After at once — on the MCP endpoints as a JSON-RPC error — instead of queueing until the
 * process falls over. Health probes are never refused: a busy gateway is not a dead one, and a liveness probe that
 * failed would have it restarted just when it is busiest. Sampled once a second; nothing per request but a compare.
 */

export default fp(async function mcpGatewayOverload (app) {
  const { overload } = app.mcpConfig
  if (overload.maxEventLoopDelayMs === 0 && overload.maxHeapUsedBytes === 0 && overload.maxRssBytes === 0) return
  if (app.hasDecorator('isUnderPressure')) {
    app.log.warn('the host app registered @fastify/under-pressure: its thresholds guard the gateway routes too; overload is not applied twice')
    return
  }
  await app.register(underPressure, {
    maxEventLoopDelay: overload.maxEventLoopDelayMs,
    maxHeapUsedBytes: overload.maxHeapUsedBytes,
    maxRssBytes: overload.maxRssBytes,
    retryAfter: overload.retryAfterSec,
    // Returning nothing lets the request through; a rejection is answered by the route's error handler.
    pressureHandler: (request: FastifyRequest, _reply: unknown, type: string, value: number | undefined) => {
      if (request.routeOptions.config?.mcpProbe === true) return undefined
      return Promise.reject(new ERR_OVERLOADED(describe(type, value), overload.retryAfterSec))
    }
  })
}, { name: 'mcp-gateway-overload', fastify: '5.x', dependencies: ['mcp-gateway-config'] })

function describe (type: string, value: number | undefined): string {
  const v = value === undefined ? '' : ` ${Math.round(value)}`
  switch (type) {
    case 'eventLoopDelay': return `event loop delay${v} ms`
    case 'heapUsedBytes': return `heap${v} bytes`
    case 'rssBytes': return `RSS${v} bytes`
    default: return type
  }
}
