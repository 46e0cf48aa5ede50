import {
  type Attributes, type Context, context as contexts, isSpanContextValid, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type TextMapGetter,
  type TextMapPropagator, trace, type Tracer
} from '@opentelemetry/api'
import type { JsonRpcId, Params } from '../schemas/jsonrpc.js'
import type { ClientContext } from './client-context.js'
import { ClientSession } from './client-session.js'
import { isToolError, OUTCOME_ERROR_TYPES, rpcErrorOf, TOOL_ERROR } from './mcp-semconv.js'

/**
 * OpenTelemetry spans of the MCP semantic conventions, through `@opentelemetry/api` only (which SDK exports them is
 * the tracing plugin's business, or the host app's): a SERVER span per client request, from when the gateway took
 * it until it was answered, and a CLIENT span per attempt on an upstream, its child, made the active context while
 * the attempt is sent (a host's HTTP instrumentation nests under it). Trace context comes in from the request's
 * `params._meta` (where the conventions say MCP carries it) or, without a valid one there, from the HTTP request's
 * headers; it goes out to the upstream in both, naming the attempt's span as the parent. Spans are ended exactly
 * once, whatever way the request ends, and nothing a span processor throws reaches the call. Nothing here runs
 * unless tracing is on: the proxy and the forwarder hold no McpTracing otherwise.
 */

/** The HTTP request's headers, where the trace context of a request may also come from. */
export type TraceCarrier = Readonly<Record<string, string | string[] | undefined>>

/** One upstream attempt's span, and the trace context it sends upstream. */
export interface AttemptSpan {
  /** `params` with the attempt's trace context in `_meta` (the upstream's server span is its child). */
  readonly params: Params
  /** The same as HTTP headers, for upstreams reached over HTTP. */
  readonly headers: Record<string, string>
  /** Runs `send` with the attempt's span as the active context. */
  run<T> (send: () => T): T
  /** The upstream's own session, once known. */
  session (id: string | undefined, protocolVersion: string | undefined): void
  /** Ends the span: with its result, or with what failed it and the forwarder's outcome for it. */
  end (result: unknown, failure?: unknown, outcome?: string): void
}

/** What an attempt's span says about the upstream it goes to. */
export interface AttemptTarget {
  readonly upstream: string
  readonly service: string
  readonly url: string | undefined
  readonly transport: string
  /** 1 for a call's first attempt; a retry, a move after a refusal or a hedge counts up. */
  readonly attempt: number
  /** The second attempt of a hedged call. */
  readonly hedge: boolean
}

/** The longest text kept in an attribute (a resource URI, a tool name, an error message). */
const MAX_ATTRIBUTE = 1024
/** Method names and request ids are the client's: shorter still. */
const MAX_NAME = 128
/** The longest `_meta` or header value a propagator is shown (W3C's are at most a few hundred characters). */
const MAX_CARRIED = 8192
/** The keys of `_meta` a propagator is shown (a client may send thousands). */
const MAX_META_KEYS = 64
/** The MCP request methods a span may be named by; any other is named `_OTHER` (clients choose it). */
const MCP_METHODS: ReadonlySet<string> = new Set([
  'initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'resources/templates/list', 'resources/read',
  'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel'
])

export class McpTracing {
  readonly #tracer: Tracer
  readonly #propagator: TextMapPropagator

  constructor (propagator: TextMapPropagator, tracer: Tracer) {
    this.#propagator = propagator
    this.#tracer = tracer
  }

  /**
   * The SERVER span of one client request: `run` is served inside it, given the span's context (what the forwarder
   * makes its attempts' spans children of); the span ends when the answer is settled. `target`: the tool or prompt
   * the request names, when the catalog has it (only then is it in the span's name: unknown names are the client's).
   */
  serve<T> (client: ClientContext, method: string, params: Params | undefined, requestId: JsonRpcId | undefined, carrier: TraceCarrier | undefined,
    target: string | undefined, run: (trace: Context) => Promise<T>): Promise<T> {
    const parent = this.#remoteParent(params, carrier)
    const attributes: Attributes = { 'mcp.method.name': clip(method, MAX_NAME), 'network.transport': 'tcp', ...targetAttributes(method, params) }
    if (requestId !== undefined && requestId !== null) attributes['jsonrpc.request.id'] = clip(String(requestId), MAX_NAME)
    if (client instanceof ClientSession) {
      attributes['mcp.session.id'] = client.id
      if (client.negotiated) attributes['mcp.protocol.version'] = client.protocolVersion
    }
    if (client.address !== undefined) attributes['client.address'] = client.address
    const name = target !== undefined ? `${method} ${target}` : MCP_METHODS.has(method) ? method : '_OTHER'
    const span = this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent)
    const context = trace.setSpan(parent, span)
    let served: Promise<T>
    try {
      served = run(context)
    } catch (err) {
      endServed(span, undefined, err)
      throw err
    }
    return served.then((result) => {
      endServed(span, result)
      return result
    }, (err: unknown) => {
      endServed(span, undefined, err)
      throw err
    })
  }

  /** The CLIENT span of one attempt on an upstream, child of the client request's span (or a root of its own). */
  attempt (parent: Context | undefined, method: string, params: Params, target: AttemptTarget): AttemptSpan {
    const attributes: Attributes = {
      'mcp.method.name': method,
      'network.transport': target.transport === 'stdio' ? 'pipe' : 'tcp',
      'mcp_gateway.upstream': target.upstream,
      'mcp_gateway.service': target.service,
      'mcp_gateway.attempt': target.attempt,
      ...targetAttributes(method, params)
    }
    if (target.hedge) attributes['mcp_gateway.hedge'] = true
    Object.assign(attributes, serverAttributes(target.url))
    const base = parent ?? ROOT_CONTEXT
    const span = this.#tracer.startSpan(spanName(method, attributes), { kind: SpanKind.CLIENT, attributes }, base)
    const context = trace.setSpan(base, span)
    const headers: Record<string, string> = {}
    this.#propagator.inject(context, headers, { set: (carrier, key, value) => { carrier[key] = value } })
    let sent = params
    const meta = params._meta as Record<string, unknown> | undefined
    const fields = this.#propagator.fields()
    // The client's own trace keys are replaced: the upstream's parent is this attempt. Nothing to say: _meta as it was.
    if (Object.keys(headers).length > 0 || (meta !== undefined && fields.some(key => key in meta))) {
      const replaced: Record<string, unknown> = { ...meta }
      for (const key of fields) delete replaced[key]
      sent = { ...params, _meta: Object.assign(replaced, headers) }
    }
    let done = false
    return {
      params: sent,
      headers,
      run: send => contexts.with(context, send),
      session: (id, protocolVersion) => {
        if (id !== undefined) span.setAttribute('mcp.session.id', id)
        if (protocolVersion !== undefined) span.setAttribute('mcp.protocol.version', protocolVersion)
      },
      end: (result, failure, outcome) => {
        if (done) return
        done = true
        endAttempt(span, result, failure, outcome)
      }
    }
  }

  /** The caller's trace context: the request's `_meta` first (the conventions' carrier), then its HTTP headers. */
  #remoteParent (params: Params | undefined, carrier: TraceCarrier | undefined): Context {
    const meta = params?._meta
    if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
      const extracted = this.#propagator.extract(ROOT_CONTEXT, meta, META_GETTER)
      if (isValid(extracted)) return extracted
    }
    if (carrier !== undefined) {
      const extracted = this.#propagator.extract(ROOT_CONTEXT, carrier, HEADER_GETTER)
      if (isValid(extracted)) return extracted
    }
    return contexts.active()
  }
}

function isValid (context: Context): boolean {
  const spanContext = trace.getSpanContext(context)
  return spanContext !== undefined && isSpanContextValid(spanContext)
}

/** `_meta` as a propagator sees it: its string values only, bounded in number and length. */
const META_GETTER: TextMapGetter<Record<string, unknown>> = {
  keys: carrier => Object.keys(carrier).slice(0, MAX_META_KEYS),
  get: (carrier, key) => {
    const value = Object.hasOwn(carrier, key) ? carrier[key] : undefined
    return typeof value === 'string' && value.length <= MAX_CARRIED ? value : undefined
  }
}

/** HTTP headers (lower-cased by Node) as a propagator sees them, bounded in length. */
const HEADER_GETTER: TextMapGetter<TraceCarrier> = {
  keys: carrier => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key.toLowerCase()]
    const text = Array.isArray(value) ? value[0] : value
    return text !== undefined && text.length <= MAX_CARRIED ? text : undefined
  }
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

/** server.address and server.port of an upstream's URL (none for stdio). */
function serverAttributes (url: string | undefined): Attributes {
  if (url === undefined) return {}
  try {
    const parsed = new URL(url)
    const secure = parsed.protocol === 'https:' || parsed.protocol === 'wss:'
    return { 'server.address': parsed.hostname, 'server.port': parsed.port === '' ? (secure ? 443 : 80) : Number(parsed.port) }
  } catch {
    return {}
  }
}

/** `{mcp.method.name} {target}`: an upstream's own tool or prompt (low cardinality), never the resource URI. */
function spanName (method: string, attributes: Attributes): string {
  const target = attributes['gen_ai.tool.name'] ?? attributes['gen_ai.prompt.name']
  return typeof target === 'string' ? `${method} ${target}` : method
}

/**
 * Ends a SERVER span with how the request ended: the JSON-RPC error's code as `error.type` and
 * `rpc.response.status_code`, its message as the status; `tool_error` for a tool result with `isError`. A request
 * the client withdrew is not an error (it is answered with nothing).
 */
function endServed (span: Span, result: unknown, error?: unknown): void {
  safely(span, () => {
    if (error !== undefined) {
      if ((error as { code?: unknown }).code === 'MCPGW_ERR_REQUEST_CANCELLED') {
        span.setAttribute('mcp_gateway.cancelled', true)
        return
      }
      const rpc = rpcErrorOf(error)
      const code = rpc === undefined ? '_OTHER' : String(rpc.code)
      span.setAttributes({ 'error.type': code, 'rpc.response.status_code': code })
      span.setStatus({ code: SpanStatusCode.ERROR, message: clip(rpc?.message ?? 'the error could not be read') })
    } else if (isToolError(result)) toolError(span)
  })
}

/**
 * Ends a CLIENT span: an upstream's JSON-RPC error by its code; a failure without one (a timeout, a dropped
 * connection, an HTTP error) by the forwarder's outcome, with no status code (there was no JSON-RPC answer); a
 * cancellation — the caller's, or the losing attempt of a hedge — is not an error.
 */
function endAttempt (span: Span, result: unknown, failure: unknown, outcome: string | undefined): void {
  safely(span, () => {
    if (failure === undefined) {
      if (isToolError(result)) toolError(span)
      return
    }
    if (outcome === 'cancelled') {
      span.setAttribute('mcp_gateway.cancelled', true)
      return
    }
    const rpcError = (failure as { rpcError?: { code?: unknown, message?: unknown } }).rpcError
    if (rpcError !== undefined && typeof rpcError.code === 'number') {
      span.setAttributes({ 'error.type': String(rpcError.code), 'rpc.response.status_code': String(rpcError.code) })
    } else {
      span.setAttribute('error.type', OUTCOME_ERROR_TYPES[outcome as keyof typeof OUTCOME_ERROR_TYPES] || '_OTHER')
    }
    span.setStatus({ code: SpanStatusCode.ERROR, message: clip(failure instanceof Error ? failure.message : String(failure)) })
  })
}

function toolError (span: Span): void {
  span.setAttribute('error.type', TOOL_ERROR)
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'the tool answered with isError: true' })
}

/** Sets the span's outcome and ends it; nothing a span processor throws reaches the call it describes. */
function safely (span: Span, describe: () => void): void {
  try {
    describe()
  } catch {}
  try {
    span.end()
  } catch {}
}

function clip (text: string, max = MAX_ATTRIBUTE): string {
  return text.length > max ? text.slice(0, max) : text
}
