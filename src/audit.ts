import type { Params } from '../schemas/jsonrpc.js'
import type { ClientContext } from './client-context.js'
import type { Logger } from './logger.js'

/**
 * The audit trail of authenticated requests: one log line (at info, `audit: true`) per request an authenticated
 * caller makes of the engine, on any transport — who (principal id and kind), what (method, and the tool, prompt
 * or URI it names), how it ended (`ok`, or the error's code) and how long it took. Credentials never reach it: only
 * the principal's id, never the key or token it presented, and no arguments.
 */

const SUCCEEDED = Symbol('succeeded')

export class AuditLog {
  constructor (private readonly log: Logger) {}

  /** Logs `served` when it settles; returns it unchanged. */
  track<T> (context: ClientContext, method: string, params: Params | undefined, served: Promise<T>): Promise<T> {
    if (context.principal === null) return served
    const started = performance.now()
    served.then(() => this.record(context, method, params, started), (err: unknown) => this.record(context, method, params, started, err))
    return served
  }

  /** Logs a request that ended: `failure` is what it failed with (omitted: it succeeded); `started` from performance.now(). */
  record (context: ClientContext, method: string, params: Params | undefined, started: number, failure: unknown = SUCCEEDED): void {
    const principal = context.principal
    if (principal === null) return
    this.log.info({
      audit: true,
      principal: principal.id,
      kind: principal.kind,
      method: method.slice(0, 256),
      ...subjectOf(method, params),
      outcome: failure === SUCCEEDED ? 'ok' : codeOf(failure),
      ms: Math.round((performance.now() - started) * 10) / 10
    }, 'audit')
  }
}

/** What a request names, bounded in length (a client chooses these strings). */
function subjectOf (method: string, params: Params | undefined): Record<string, string> {
  const pick = (value: unknown) => typeof value === 'string' ? value.slice(0, 256) : undefined
  switch (method) {
    case 'tools/call': { const tool = pick(params?.name); return tool === undefined ? {} : { tool } }
    case 'prompts/get': { const prompt = pick(params?.name); return prompt === undefined ? {} : { prompt } }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe': { const uri = pick(params?.uri); return uri === undefined ? {} : { uri } }
    default: return {}
  }
}

function codeOf (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code
  const rpc = (err as { rpcError?: { code?: unknown } } | null)?.rpcError?.code
  return typeof rpc === 'number' ? `rpc ${rpc}` : 'error'
}
