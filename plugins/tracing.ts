import type { ContextManager, TextMapPropagator } from '@opentelemetry/api'
import type { NodeSDK } from '@opentelemetry/sdk-node'
import fp from 'fastify-plugin'
import type { McpTracing } from '../src/tracing.js'
import { PACKAGE } from '../src/version.js'

/**
 * OpenTelemetry tracing, as `app.mcpTracing` (undefined when off: the request path then has no tracing step at all).
 * On when `tracing.enabled` says so or, unset, when the standard variables ask for an exporter
 * (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). When on, spans go to
 * the tracer provider the process has (an app embedding the gateway, with its own SDK) or, if it has none, to the
 * OpenTelemetry Node SDK, started here from the OTEL_* variables (exporter, protocol, endpoint, headers, sampler,
 * propagators, resource, batching) and shared by the gateways of the process; `OTEL_SDK_DISABLED=true` keeps it
 * from starting (tracing is then off unless the process has a provider of its own). Traces only: the metrics stay
 * Prometheus (/metrics), so the SDK's metric and log exporters are not started. The last gateway using the SDK to
 * close flushes the spans still batched (for at most SHUTDOWN_MS) and unregisters the tracer provider; the
 * propagator it registered stays (another registration could not replace it anyway). It registers no context manager.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpTracing: McpTracing | undefined
  }
}

/** How long closing waits for the SDK to export the spans still batched. */
const SHUTDOWN_MS = 2000

/** The SDK this module started (set before it is loaded, so gateways starting together share one), and its users. */
let shared: { started: Promise<NodeSDK>, users: number } | undefined

/** Whether the OTEL_* variables ask for traces to be exported. */
export function tracingWanted (env: NodeJS.ProcessEnv = process.env): boolean {
  if (sdkDisabled(env)) return false
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map(e => e.trim()).filter(e => e !== '')
  if (exporters !== undefined && exporters.length > 0) return !exporters.every(e => e === 'none')
  return (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '') !== '' || (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? '') !== ''
}

function sdkDisabled (env: NodeJS.ProcessEnv): boolean {
  return env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true'
}

type Api = typeof import('@opentelemetry/api')

/** Whether some tracer provider is registered (the API's proxy delegates to a no-op one otherwise). */
function providerRegistered ({ trace, ProxyTracerProvider }: Api): boolean {
  const provider = trace.getTracerProvider()
  return provider instanceof ProxyTracerProvider
    ? provider.getDelegate() !== new ProxyTracerProvider().getDelegate()
    : true
}

/** The Node SDK from the OTEL_* variables, started. */
async function startSdk (): Promise<NodeSDK> {
  const named = process.env.OTEL_SERVICE_NAME !== undefined || /(^|,)\s*service\.name\s*=/.test(process.env.OTEL_RESOURCE_ATTRIBUTES ?? '')
  const { NodeSDK } = await import('@opentelemetry/sdk-node')
  const sdk = new NodeSDK({
    ...(named ? {} : { serviceName: PACKAGE.name }),
    // Traces only: no metric readers, no log processors (they would default to OTLP exporters of their own).
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
    // No context manager: the gateway hands its spans' contexts on explicitly, and with no instrumentation nothing
    // else reads the active one; the default (AsyncLocalStorage on async_hooks in Node 20) taxes every promise of the
    // process. null is the SDK's documented "do not register", which its types do not spell.
    contextManager: null as unknown as ContextManager
  })
  sdk.start()
  return sdk
}

export default fp(async function mcpGatewayTracing (app) {
  const enabled = app.mcpConfig.tracing.enabled ?? tracingWanted()
  if (!enabled) {
    app.decorate('mcpTracing', undefined)
    return
  }
  // Loaded only when tracing is on: the SDK and its exporters are ~27 MB and ~140 ms at start-up that a gateway
  // without tracing should not pay.
  const api = await import('@opentelemetry/api')
  const { propagation, trace } = api
  let ours = false
  if (shared !== undefined) {
    shared.users++
    ours = true
    await shared.started
  } else if (!providerRegistered(api) && !sdkDisabled(process.env)) {
    const starting = { started: startSdk(), users: 1 }
    shared = starting
    ours = true
    await starting.started.catch((err: unknown) => {
      if (shared === starting) shared = undefined
      throw err
    })
    app.log.info({ exporter: process.env.OTEL_TRACES_EXPORTER ?? 'otlp', endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing: OpenTelemetry SDK started from the OTEL_* variables')
  }
  if (!ours && !providerRegistered(api)) {
    app.log.warn('tracing: off — OTEL_SDK_DISABLED=true and no tracer provider registered in this process')
    app.decorate('mcpTracing', undefined)
    return
  }
  if (!ours) app.log.info('tracing: spans go to the tracer provider already registered in this process')
  // The SDK registered the propagators OTEL_PROPAGATORS names (none included); a host without one gets W3C's.
  let propagator: TextMapPropagator = propagation
  if (!ours && propagation.fields().length === 0) {
    const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = await import('@opentelemetry/core')
    propagator = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] })
  }
  const { McpTracing } = await import('../src/tracing.js')
  app.decorate('mcpTracing', new McpTracing(propagator, trace.getTracer(PACKAGE.name, PACKAGE.version)))
  if (ours) {
    app.addHook('onClose', async () => {
      const using = shared
      if (using === undefined || --using.users > 0) return
      shared = undefined
      const sdk = await using.started
      let timer: NodeJS.Timeout | undefined
      const flushed = await Promise.race([
        sdk.shutdown().then(() => true, (err: unknown) => { app.log.warn({ err }, 'tracing: flushing spans at shutdown failed'); return true }),
        new Promise<false>(resolve => { timer = setTimeout(() => resolve(false), SHUTDOWN_MS) })
      ])
      clearTimeout(timer)
      if (!flushed) app.log.warn(`tracing: the exporter did not take the last spans within ${SHUTDOWN_MS} ms; they are dropped`)
      trace.disable()
    })
  }
}, { name: 'mcp-gateway-tracing', fastify: '5.x', dependencies: ['mcp-gateway-config'] })
