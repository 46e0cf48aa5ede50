import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import stringify from 'safe-stable-stringify'
import type { Params } from '../schemas/jsonrpc.js'
import type { ClientContext } from './client-context.js'
import type { CallHooks, ForwardedCall } from './forwarder.js'
import { RawResult } from './raw-result.js'

/**
 * The result cache, in the forwarder's pipeline (a preCall hook answers a hit, an onResult hook stores): opt-in per
 * service (`cache: { ttlMs }` on its servers) or per tool (`cache.tools` globs on client-visible names), only for
 * tools annotated `readOnlyHint` unless the rule says `force`. The key is what the caller may see (its roles, or its
 * principal for services that get the caller's identity), the service's current tool listing (a list_changed that
 * changes it starts a new generation of keys), the tool and its arguments in canonical JSON (key order does not
 * matter), hashed. Errors are never stored: JSON-RPC errors, failures, and results with `isError`. A caller whose
 * calls go to a session of its own upstream (its roots, its log level…) is never served from the cache, nor stored
 * into it. A call with `_meta["fastify-mcp-gateway/cache"]` `"bypass"` skips the lookup (and refreshes the entry),
 * `"no-store"` skips both; the key is taken out of `_meta` before the call goes upstream. Memory layer: lru-cache
 * bounded by the bytes of the stored results (`cache.maxBytes`), each entry with its rule's TTL.
 */

export const CACHE_META_KEY = 'fastify-mcp-gateway/cache'

export interface CacheRule {
  readonly ttlMs: number
  readonly force: boolean
}

export interface ResultCacheOptions {
  readonly maxBytes: number
  /** The rule that applies to a call of this tool on this service, if any. */
  readonly ruleFor: (service: string, tool: string) => CacheRule | undefined
  /** What `context` may see of `service`, as a string; undefined: its results are its own (never cached). */
  readonly scopeOf: (context: ClientContext, service: string) => string | undefined
  /** The service's current tool listing, as a digest (undefined: not listed now). */
  readonly listingOf: (service: string) => string | undefined
  /** Whether the tool is annotated readOnlyHint. */
  readonly readOnly: (call: ForwardedCall) => boolean
  readonly observer?: CacheObserver | undefined
}

export interface CacheObserver {
  hit (): void
  miss (): void
  /** A result was stored; `bytes`: what the memory layer holds now. */
  stored (bytes: number): void
}

export interface CacheFigures {
  readonly hits: number
  readonly misses: number
  readonly entries: number
  readonly bytes: number
}

export class ResultCache implements CallHooks {
  readonly #memory: LRUCache<string, string>
  /** Calls that missed, waiting for their result to be stored: their key and TTL. */
  readonly #pending = new WeakMap<ForwardedCall, { key: string, ttl: number }>()
  #hits = 0
  #misses = 0

  constructor (private readonly options: ResultCacheOptions) {
    this.#memory = new LRUCache<string, string>({
      maxSize: options.maxBytes,
      // A JavaScript string's length, in UTF-16 units: close enough to bytes for a bound, and free to compute.
      sizeCalculation: (value, key) => value.length + key.length,
      ttlAutopurge: false
    })
  }

  preCall (context: ClientContext, call: ForwardedCall): unknown {
    if (call.method !== 'tools/call' || call.name === undefined) return undefined
    const directive = takeDirective(call)
    const rule = this.options.ruleFor(call.service, call.name)
    if (rule === undefined || (!rule.force && !this.options.readOnly(call)) || directive === 'no-store') return undefined
    const scope = this.options.scopeOf(context, call.service)
    const listing = this.options.listingOf(call.service)
    if (scope === undefined || listing === undefined) return undefined
    const key = createHash('sha256').update(`${scope}\u0000${listing}\u0000${call.name}\u0000${stringify((call.params as Params).arguments ?? {})}`).digest('base64url')
    if (directive !== 'bypass') {
      const text = this.#memory.get(key)
      if (text !== undefined) {
        this.#hits++
        this.options.observer?.hit()
        return RawResult.of(text)
      }
    }
    this.#misses++
    this.options.observer?.miss()
    this.#pending.set(call, { key, ttl: rule.ttlMs })
    return undefined
  }

  onResult (_context: ClientContext, call: ForwardedCall, result: unknown): void {
    const pending = this.#pending.get(call)
    if (pending === undefined) return
    this.#pending.delete(call)
    let text: string
    if (result instanceof RawResult) {
      if (result.isToolError) return
      text = result.resultText
    } else {
      if ((result as { isError?: unknown } | undefined)?.isError === true) return
      text = JSON.stringify(result)
    }
    if (text.length + pending.key.length > this.options.maxBytes) return
    this.#memory.set(pending.key, text, { ttl: pending.ttl })
    this.options.observer?.stored(this.#memory.calculatedSize)
  }

  figures (): CacheFigures {
    return { hits: this.#hits, misses: this.#misses, entries: this.#memory.size, bytes: this.#memory.calculatedSize }
  }

  clear (): void {
    this.#memory.clear()
  }
}

/** The caller's cache directive, taken out of `_meta` so the upstream never sees it. */
function takeDirective (call: ForwardedCall): string | undefined {
  const meta = (call.params as Params)._meta as Record<string, unknown> | undefined
  if (meta === undefined || !(CACHE_META_KEY in meta)) return undefined
  const { [CACHE_META_KEY]: directive, ...rest } = meta
  call.params = { ...call.params, _meta: rest }
  return typeof directive === 'string' ? directive : undefined
}
