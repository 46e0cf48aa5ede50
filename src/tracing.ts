import {
  type Attributes, type Context, context as contexts, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type TextMapPropagator,
  trace, type Tracer
} from '@opentelemetry/api'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import type { JsonRpcId, Params } from '../schemas/jsonrpc.js'
import type { ClientContext } from './client-context.js'
import { ClientSession } from './client-session.js'
import { codeType, isToolError, rpcErrorOf, TOOL_ERROR } from './mcp-semconv.js'

/**
 * OpenTelemetry spans of the MCP semantic conventions, through `@opentelemetry/api` only (which SDK exports them is
 * the tracing plugin's business, or the host app's): a SERVER span per client request, from when the gateway took
 * it until it was answered, and a CLIENT span per attempt on an upstream, its child. Trace context comes in from the
 * request's `params._meta` (`traceparent`, `tracestate`, `baggage`: what the conventions say MCP carries it in) or,
 * without one there, from the HTTP request's own headers; it goes out to the upstream in both, naming the attempt's
 * span as the parent. Spans are ended exactly once, whatever way the request ends. Nothing here runs unless
 * tracing is on: the proxy and the forwarder hold no McpTracing otherwise.
 */

/** The W3C trace context of an HTTP request, from its headers. */
export interface TraceCarrier {
  traceparent?: string | undefined
  tracestate?: string | undefined
  baggage?: string | undefined
}

/** One upstream attempt's span, and the trace context it sends upstream. */
export interface AttemptSpan {
  /** `params` with the attempt's trace context in `_meta` (the upstream's server span is its child). */
  readonly params: Params
  /** The same as HTTP headers, for upstreams reached over HTTP. */
  readonly headers: Record<string, string>
  /** Ends the span: with its result, or with what failed it. */
  end (result: unknown, error?: unknown): void
  /** The upstream's own session, once known. */
  session (id: string | undefined): void
}

/** What an attempt's span says about the upstream it goes to. */
export interface AttemptTarget {
  readonly upstream: string
  readonly service: string
  readonly url: string | undefined
  readonly transport: string
}

/** The longest text kept in an attribute (a resource URI, a tool name, an error message). */
const MAX_ATTRIBUTE = 1024
const TRACE_KEYS = ['traceparent', 'tracestate', 'baggage'] as const

export class McpTracing {
  readonly #tracer: Tracer
  /** The registered propagator, or W3C trace context and baggage when none is (the API's default does nothing). */
  readonly #propagator: TextMapPropagator

  constructor (version: string, tracer: Tracer = trace.getTracer('fastify-mcp-gateway', version)) {
    this.#tracer = tracer
    this.#propagator = propagation.fields().length > 0
      ? propagation
      : new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] })
  }

  /**
   * The SERVER span of one client request: `run` is served inside it, given the span's context (what the forwarder
   * makes its attempts' spans children of); the span ends when the answer is settled.
   */
  serve<T> (client: ClientContext, method: string, params: Params | undefined, requestId: JsonRpcId | undefined, carrier: TraceCarrier | undefined, run: (trace: Context) => Promise<T>): Promise<T> {
    const parent = this.#remoteParent(params, carrier)
    const attributes: Attributes = { 'mcp.method.name': method, 'network.transport': 'tcp', ...targetAttributes(method, params) }
    if (requestId !== undefined) attributes['jsonrpc.request.id'] = String(requestId)
    if (client instanceof ClientSession) {
      attributes['mcp.session.id'] = client.id
      if (client.negotiated) attributes['mcp.protocol.version'] = client.protocolVersion
    }
    const span = this.#tracer.startSpan(spanName(method, attributes), { kind: SpanKind.SERVER, attributes }, parent)
    const context = trace.setSpan(parent, span)
    let served: Promise<T>
    try {
      served = run(context)
    } catch (err) {
      ended(span, undefined, err)
      throw err
    }
    return served.then((result) => {
      ended(span, result)
      return result
    }, (err: unknown) => {
      ended(span, undefined, err)
      throw err
    })
  }

  /** The CLIENT span of one attempt on an upstream, child of the client request's span (or a root of its own). */
  attempt (parent: Context | undefined, method: string, params: Params, target: AttemptTarget, retry: number): AttemptSpan {
    const attributes: Attributes = {
      'mcp.method.name': method,
      'network.transport': target.transport === 'stdio' ? 'pipe' : 'tcp',
      'mcp_gateway.upstream': target.upstream,
      'mcp_gateway.service': target.service,
      ...targetAttributes(method, params)
    }
    if (retry > 0) attributes['mcp_gateway.retry'] = retry
    if (target.url !== undefined) {
      try {
        const url = new URL(target.url)
        attributes['server.address'] = url.hostname
        attributes['server.port'] = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
      } catch {}
    }
    const span = this.#tracer.startSpan(spanName(method, attributes), { kind: SpanKind.CLIENT, attributes }, parent ?? ROOT_CONTEXT)
    const headers: Record<string, string> = {}
    this.#propagator.inject(trace.setSpan(parent ?? ROOT_CONTEXT, span), headers, { set: (carrier, key, value) => { carrier[key] = value } })
    // The client's own trace keys are replaced: the upstream's parent is this attempt.
    const meta: Record<string, unknown> = { ...(params._meta as Record<string, unknown> | undefined) }
    for (const key of TRACE_KEYS) delete meta[key]
    Object.assign(meta, headers)
    let done = false
    return {
      params: { ...params, _meta: meta },
      headers,
      end: (result, error) => {
        if (done) return
        done = true
        ended(span, result, error)
      },
      session: (id) => { if (id !== undefined) span.setAttribute('mcp.session.id', id) }
    }
  }

  /** The caller's trace context: the request's `_meta` first (the conventions' carrier), then its HTTP headers. */
  #remoteParent (params: Params | undefined, carrier: TraceCarrier | undefined): Context {
    const meta = params?._meta as Record<string, unknown> | undefined
    const source = typeof meta?.traceparent === 'string' ? meta : carrier
    if (source === undefined) return contexts.active()
    return this.#propagator.extract(ROOT_CONTEXT, source, {
      keys: () => TRACE_KEYS.filter(key => typeof source[key] === 'string'),
      // Bounded: a W3C header is at most a few hundred characters; anything longer is not one.
      get: (from, key) => {
        const value = (from as Record<string, unknown>)[key]
        return typeof value === 'string' && value.length <= 8192 ? value : undefined
      }
    })
  }
}

/** The trace context an HTTP request carries in its headers, if any (undefined: none, the usual case). */
export function traceCarrier (headers: Record<string, string | string[] | undefined>): TraceCarrier | undefined {
  const traceparent = headers.traceparent
  if (typeof traceparent !== 'string') return undefined
  const tracestate = headers.tracestate
  const baggage = headers.baggage
  return { traceparent, tracestate: typeof tracestate === 'string' ? tracestate : undefined, baggage: typeof baggage === 'string' ? baggage : undefined }
}

/** The conventions' attributes of what a request is about: its tool, prompt or resource. */
function targetAttributes (method: string, params: Params | undefined): Attributes {
  const name = params?.name
  switch (method) {
    case 'tools/call':
      return typeof name === 'string' ? { 'gen_ai.tool.name': clip(name), 'gen_ai.operation.name': 'execute_tool' } : { 'gen_ai.operation.name': 'execute_tool' }
    case 'prompts/get':
      return typeof name === 'string' ? { 'gen_ai.prompt.name': clip(name) } : {}
    case 'resources/read': case 'resources/subscribe': case 'resources/unsubscribe':
      return typeof params?.uri === 'string' ? { 'mcp.resource.uri': clip(params.uri) } : {}
    default:
      return {}
  }
}

/** `{mcp.method.name} {target}`: the tool or prompt (low cardinality), never the resource URI. */
function spanName (method: string, attributes: Attributes): string {
  const target = attributes['gen_ai.tool.name'] ?? attributes['gen_ai.prompt.name']
  return typeof target === 'string' ? `${method} ${target}` : method
}

/**
 * Ends `span` with how the request ended: a JSON-RPC error's code as `error.type` and `rpc.response.status_code`,
 * its message as the status; a tool result with `isError` as `tool_error`.
 */
function ended (span: Span, result: unknown, error?: unknown): void {
  if (error !== undefined) {
    const rpc = rpcErrorOf(error)
    const type = codeType(rpc?.code)
    span.setAttributes({ 'error.type': type, 'rpc.response.status_code': rpc === undefined ? type : String(rpc.code) })
    span.setStatus({ code: SpanStatusCode.ERROR, message: clip(rpc?.message ?? 'the error could not be read') })
  } else if (isToolError(result)) {
    span.setAttribute('error.type', TOOL_ERROR)
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'the tool answered with isError: true' })
  }
  span.end()
}

function clip (text: string): string {
  return text.length > MAX_ATTRIBUTE ? text.slice(0, MAX_ATTRIBUTE) : text
}
