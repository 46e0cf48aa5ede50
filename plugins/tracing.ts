import { context, propagation, ProxyTracerProvider, trace } from '@opentelemetry/api'
import { NodeSDK } from '@opentelemetry/sdk-node'
import fp from 'fastify-plugin'
import { McpTracing } from '../src/tracing.js'
import { PACKAGE } from '../src/version.js'

/**
 * OpenTelemetry tracing, as `app.mcpTracing` (undefined when off: the request path then has no tracing step at all).
 * On when `tracing.enabled` says so or, unset, when the standard variables ask for an exporter
 * (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); off with
 * `OTEL_SDK_DISABLED=true`. When on, the OpenTelemetry Node SDK is started from the OTEL_* variables (exporter,
 * protocol, endpoint, headers, sampler, propagators, resource, batching) — unless the process already has a tracer
 * provider (an app embedding the gateway, with its own SDK): then the spans go to that one. Traces only: the metrics
 * stay Prometheus (/metrics), so the SDK's metric and log exporters are not started. Closing the gateway flushes the
 * spans still batched and unregisters what it registered.
 */

declare module 'fastify' {
  interface FastifyInstance {
    mcpTracing: McpTracing | undefined
  }
}

/** Whether the OTEL_* variables ask for traces to be exported. */
export function tracingWanted (env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map(e => e.trim()).filter(e => e !== '')
  if (exporters !== undefined && exporters.length > 0) return !exporters.every(e => e === 'none')
  return (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '') !== '' || (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? '') !== ''
}

/** Whether some tracer provider is registered already (the API's proxy delegates to a no-op one otherwise). */
function providerRegistered (): boolean {
  const provider = trace.getTracerProvider()
  return provider instanceof ProxyTracerProvider
    ? provider.getDelegate() !== new ProxyTracerProvider().getDelegate()
    : true
}

export default fp(async function mcpGatewayTracing (app) {
  const enabled = app.mcpConfig.tracing.enabled ?? tracingWanted()
  if (!enabled) {
    app.decorate('mcpTracing', undefined)
    return
  }
  let sdk: NodeSDK | undefined
  if (!providerRegistered() && process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true') {
    const named = process.env.OTEL_SERVICE_NAME !== undefined || /(^|,)\s*service\.name\s*=/.test(process.env.OTEL_RESOURCE_ATTRIBUTES ?? '')
    sdk = new NodeSDK({
      ...(named ? {} : { serviceName: PACKAGE.name }),
      // Traces only: no metric readers, no log processors (they would default to OTLP exporters of their own).
      metricReaders: [],
      logRecordProcessors: [],
      instrumentations: []
    })
    sdk.start()
    app.log.info({ exporter: process.env.OTEL_TRACES_EXPORTER ?? 'otlp', endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing: OpenTelemetry SDK started from the OTEL_* variables')
  } else {
    app.log.info('tracing: spans go to the tracer provider already registered in this process')
  }
  app.decorate('mcpTracing', new McpTracing(PACKAGE.version))
  if (sdk !== undefined) {
    const started = sdk
    app.addHook('onClose', async () => {
      // Spans still batched are exported first (bounded by the SDK's own export timeout).
      await started.shutdown().catch((err: unknown) => app.log.warn({ err }, 'tracing: flushing spans at shutdown failed'))
      trace.disable()
      propagation.disable()
      context.disable()
    })
  }
}, { name: 'mcp-gateway-tracing', fastify: '5.x', dependencies: ['mcp-gateway-config'] })
