import { createHash } from 'node:crypto'
import stringify from 'safe-stable-stringify'
import type { Params } from '../schemas/jsonrpc.js'
import type { ClientContext } from './client-context.js'
import type { CallHooks, ForwardedCall } from './forwarder.js'
import { RawResult } from './raw-result.js'
import type { RedisStatus } from './redis-link.js'
import { resultOf, type StoredEntry } from './result-cache/entry.js'
import type { FileLayer } from './result-cache/file-layer.js'
import { Invalidations } from './result-cache/invalidations.js'
import { MemoryLayer } from './result-cache/memory-layer.js'
import { MARK_ALL, type RedisLayer, type RedisLookup } from './result-cache/redis-layer.js'

/**
 * The result cache, in the forwarder's pipeline (a preCall hook answers a hit, an onResult hook stores): opt-in per
 * service (`cache: { ttlMs }` on its servers) or per tool (`cache.tools` globs on client-visible names), only for
 * tools annotated `readOnlyHint` unless the rule says `force`; resource reads of services whose rule says
 * `resources`. The key is what the caller may see (its roles, or its principal for services that get the caller's
 * identity), the service, for tools its current tool listing (a list_changed that changes it starts a new generation
 * of keys), the tool and its arguments in canonical JSON (key order does not matter), for resources the URI, hashed:
 * nothing of the instance, so instances sharing Redis share entries. Errors are never stored: JSON-RPC errors,
 * failures, and results with `isError`. A caller whose calls go to a session of its own upstream (its roots, its log
 * level…) is never served from the cache, nor stored into it. A call with `_meta["fastify-mcp-gateway/cache"]`
 * `"bypass"` skips the lookup (and refreshes the entry), `"no-store"` skips both; the key is taken out of `_meta`
 * before the call goes upstream.
 *
 * Layers, looked up in order, each hit filling the layers before it: memory (memory-layer.ts), Redis
 * (redis-layer.ts), a directory (file-layer.ts); a store goes to each, with the rule's TTL. Resource entries are
 * stale once the upstream says the URI was updated, or its resource list changed (marks, judged against when the
 * entry's lookup ran). With the Redis layer they live in Redis alone, where the marks are too (on Redis's clock), so
 * an update heard by any instance is seen by all; without it, in memory alone, judged by this process's marks
 * (invalidations.ts). Never on disk: a restarted gateway cannot know what was updated while it was down.
 */

export const CACHE_META_KEY = 'fastify-mcp-gateway/cache'

export interface CacheRule {
  readonly ttlMs: number
  readonly force: boolean
}

export type CacheLayerName = 'memory' | 'redis' | 'file'
/** A layer's answer to one lookup; `unavailable`: it could not tell (Redis away or busy, a disk error). */
export type LayerOutcome = 'hit' | 'miss' | 'unavailable'

export interface ResultCacheOptions {
  readonly maxBytes: number
  /** The rule that applies to a call of this tool on this service, if any. */
  readonly ruleFor: (service: string, tool: string) => CacheRule | undefined
  /** The rule for resource reads of this service, if they are cached. */
  readonly resourceRuleFor?: (service: string) => CacheRule | undefined
  /** What `context` may see of `service`, as a string; undefined: its results are its own (never cached). */
  readonly scopeOf: (context: ClientContext, service: string) => string | undefined
  /** The service's current tool listing, as a digest (undefined: not listed now). */
  readonly listingOf: (service: string) => string | undefined
  /** Whether the tool is annotated readOnlyHint. */
  readonly readOnly: (call: ForwardedCall) => boolean
  readonly observer?: CacheObserver | undefined
  readonly redis?: RedisLayer | undefined
  readonly file?: FileLayer | undefined
}

export interface CacheObserver {
  hit (): void
  miss (): void
  /** A result was stored; `bytes`: what the memory layer holds now. */
  stored (bytes: number): void
  /** One layer's answer to a lookup. */
  layer? (layer: CacheLayerName, outcome: LayerOutcome): void
  /** What a layer holds now (memory, file: the ones this process can count). */
  layerBytes? (layer: CacheLayerName, bytes: number): void
}

export interface LayerFigures {
  hits: number
  misses: number
  unavailable: number
  entries?: number
  bytes?: number
  /** Redis: its connection now. */
  state?: RedisStatus['state']
}

export interface CacheFigures {
  readonly hits: number
  readonly misses: number
  /** Of the memory layer. */
  readonly entries: number
  readonly bytes: number
  readonly layers: { readonly memory: LayerFigures, readonly redis?: LayerFigures, readonly file?: LayerFigures }
}

export interface CacheStatus {
  readonly layers: CacheLayerName[]
  /** The Redis layer's connection (when it is on): `unavailable` means lookups miss there. */
  readonly redis?: RedisStatus & { readonly pendingInvalidations: number }
}

/** One cacheable call: its key, its rule's TTL, and for resources the marks that make it stale. */
interface Lookup {
  readonly key: string
  readonly ttl: number
  /** Resource reads only (tools are never invalidated, only outdated by a new listing). */
  readonly marks: readonly string[] | undefined
  /** When the lookup ran, in the order of this process's invalidations. */
  readonly lookedUp: number
  /** Redis's clock at the lookup (µs), when Redis answered: what a store there is judged by. */
  redisNow: number | undefined
  /** Not looked up (the caller said so), but stored. */
  readonly bypass: boolean
}

export class ResultCache implements CallHooks {
  readonly #memory: MemoryLayer
  readonly #redis: RedisLayer | undefined
  readonly #file: FileLayer | undefined
  readonly #invalidations = new Invalidations()
  /** Calls that missed, waiting for their result to be stored. */
  readonly #pending = new WeakMap<ForwardedCall, Lookup>()
  readonly #figures: Record<CacheLayerName, LayerFigures> = {
    memory: { hits: 0, misses: 0, unavailable: 0 },
    redis: { hits: 0, misses: 0, unavailable: 0 },
    file: { hits: 0, misses: 0, unavailable: 0 }
  }

  #hits = 0
  #misses = 0

  constructor (private readonly options: ResultCacheOptions) {
    this.#memory = new MemoryLayer(options.maxBytes)
    this.#redis = options.redis
    this.#file = options.file
  }

  preCall (context: ClientContext, call: ForwardedCall): unknown {
    const lookup = this.#lookupOf(context, call)
    if (lookup === undefined) return undefined
    if (lookup.bypass) {
      this.#missed(call, lookup)
      // A store into Redis is judged by Redis's clock: one lookup reads it (its entry is not used).
      return this.#redis?.get(lookup.key, [])?.then(answer => { lookup.redisNow = answer?.now })
    }
    // Resource entries, with the Redis layer, are kept there alone (where every instance's invalidations are).
    const inMemory = lookup.marks === undefined || this.#redis === undefined
    if (inMemory) {
      const entry = this.#memory.get(lookup.key)
      if (entry !== undefined && (lookup.marks === undefined || this.#invalidations.valid(entry.lookedUp, lookup.marks))) {
        this.#layer('memory', 'hit')
        this.#hits++
        this.options.observer?.hit()
        return RawResult.of(entry.text)
      }
      if (entry !== undefined) this.#memory.delete(lookup.key)
      this.#layer('memory', 'miss')
    }
    // Resource reads are never kept on disk: a restarted gateway cannot know what was updated while it was down.
    if (this.#redis === undefined && (this.#file === undefined || lookup.marks !== undefined)) return this.#missed(call, lookup)
    return this.#lookDeeper(call, lookup, inMemory)
  }

  onResult (_context: ClientContext, call: ForwardedCall, result: unknown): void {
    const lookup = this.#pending.get(call)
    if (lookup === undefined) return
    this.#pending.delete(call)
    let text: string
    if (result instanceof RawResult) {
      if (result.isToolError) return
      text = result.resultText
    } else {
      if ((result as { isError?: unknown } | undefined)?.isError === true) return
      text = JSON.stringify(result)
    }
    this.#store(lookup, text, lookup.ttl, lookup.marks === undefined || this.#redis === undefined)
  }

  /** The upstream said `uri` of `service` changed: its cached reads are stale, on every instance sharing Redis. */
  resourceUpdated (service: string, uri: string): void {
    const rule = this.options.resourceRuleFor?.(service)
    if (rule === undefined) return
    const mark = uriMark(service, uri)
    this.#invalidations.mark(mark)
    this.#redis?.invalidate([mark], rule.ttlMs)
  }

  /**
   * Every cached read of `service`'s resources is stale: its resource list changed (`shared`: on every instance), or
   * its connection came back (this instance only: it may have missed updates while it was away).
   */
  resourcesChanged (service: string, shared: boolean): void {
    const rule = this.options.resourceRuleFor?.(service)
    if (rule === undefined) return
    const mark = serviceMark(service)
    this.#invalidations.mark(mark)
    if (shared) this.#redis?.invalidate([mark], rule.ttlMs)
  }

  figures (): CacheFigures {
    const memory = { ...this.#figures.memory, entries: this.#memory.entries, bytes: this.#memory.bytes }
    return {
      hits: this.#hits,
      misses: this.#misses,
      entries: memory.entries,
      bytes: memory.bytes,
      layers: {
        memory,
        ...(this.#redis !== undefined ? { redis: { ...this.#figures.redis, state: this.#redis.status.state } } : {}),
        ...(this.#file !== undefined ? { file: { ...this.#figures.file, entries: this.#file.entries, bytes: this.#file.bytes } } : {})
      }
    }
  }

  status (): CacheStatus {
    const layers: CacheLayerName[] = ['memory']
    if (this.#redis !== undefined) layers.push('redis')
    if (this.#file !== undefined) layers.push('file')
    return {
      layers,
      ...(this.#redis !== undefined ? { redis: { ...this.#redis.status, pendingInvalidations: this.#redis.pendingMarks } } : {})
    }
  }

  clear (): void {
    this.#memory.clear()
  }

  /** Indexes the file layer's directory (a restarted gateway serves what it kept at once). */
  async start (): Promise<void> {
    await this.#file?.start()
  }

  async close (): Promise<void> {
    this.#redis?.close()
    await this.#file?.close()
  }

  /** The call's key and rule; undefined: not cached. */
  #lookupOf (context: ClientContext, call: ForwardedCall): Lookup | undefined {
    if (call.method === 'tools/call' && call.name !== undefined) {
      const directive = takeDirective(call)
      const rule = this.options.ruleFor(call.service, call.name)
      if (rule === undefined || (!rule.force && !this.options.readOnly(call)) || directive === 'no-store') return undefined
      const listing = this.options.listingOf(call.service)
      if (listing === undefined) return undefined
      const what = `tool\u0000${listing}\u0000${call.name}\u0000${stringify((call.params as Params).arguments ?? {})}`
      return this.#lookup(context, call, what, rule, undefined, directive)
    }
    if (call.method !== 'resources/read') return undefined
    const uri = (call.params as Params).uri
    if (typeof uri !== 'string') return undefined
    const directive = takeDirective(call)
    const rule = this.options.resourceRuleFor?.(call.service)
    if (rule === undefined || directive === 'no-store') return undefined
    const marks = [uriMark(call.service, uri), serviceMark(call.service), MARK_ALL]
    return this.#lookup(context, call, `resource\u0000${uri}`, rule, marks, directive)
  }

  #lookup (context: ClientContext, call: ForwardedCall, what: string, rule: CacheRule, marks: string[] | undefined, directive: string | undefined): Lookup | undefined {
    const scope = this.options.scopeOf(context, call.service)
    if (scope === undefined) return undefined
    const key = createHash('sha256').update(`${scope}\u0000${call.service}\u0000${what}`).digest('base64url')
    return { key, ttl: rule.ttlMs, marks, lookedUp: this.#invalidations.now, redisNow: undefined, bypass: directive === 'bypass' }
  }

  async #lookDeeper (call: ForwardedCall, lookup: Lookup, inMemory: boolean): Promise<unknown> {
    let redis: RedisLookup | undefined
    if (this.#redis !== undefined) {
      redis = await this.#redis.get(lookup.key, lookup.marks ?? [])
      lookup.redisNow = redis?.now
      const result = redis?.entry === undefined ? undefined : resultOf(redis.entry.text)
      this.#layer('redis', redis === undefined ? 'unavailable' : result === undefined ? 'miss' : 'hit')
      if (result !== undefined && redis?.entry !== undefined) {
        // Memory keeps it for what is left of its TTL (on Redis's clock: both ends of it are Redis's).
        if (inMemory) this.#memory.set(lookup.key, { text: redis.entry.text, lookedUp: lookup.lookedUp }, (redis.entry.expiresAt - redis.now) / 1000)
        return this.#hit(result)
      }
    }
    if (this.#file !== undefined && lookup.marks === undefined) {
      const reading = this.#file.get(lookup.key)
      const entry = reading === undefined ? undefined : await reading.catch(() => undefined)
      const result = entry === undefined ? undefined : resultOf(entry.text)
      this.#layer('file', result !== undefined ? 'hit' : this.#file.failing ? 'unavailable' : 'miss')
      if (result !== undefined && entry !== undefined) {
        const left = entry.expiresAt - Date.now()
        this.#memory.set(lookup.key, { text: entry.text, lookedUp: lookup.lookedUp }, left)
        if (redis !== undefined) {
          this.#redis?.set(lookup.key, { text: entry.text, storedAt: redis.now, expiresAt: redis.now + left * 1000 }, Buffer.byteLength(entry.text), left)
        }
        return this.#hit(result)
      }
    }
    return this.#missed(call, lookup)
  }

  #hit (result: RawResult): RawResult {
    this.#hits++
    this.options.observer?.hit()
    return result
  }

  #missed (call: ForwardedCall, lookup: Lookup): undefined {
    this.#misses++
    this.options.observer?.miss()
    this.#pending.set(call, lookup)
    return undefined
  }

  #store (lookup: Lookup, text: string, ttl: number, inMemory: boolean): void {
    if (inMemory && this.#memory.set(lookup.key, { text, lookedUp: lookup.lookedUp }, ttl)) {
      this.options.observer?.stored(this.#memory.bytes)
      this.options.observer?.layerBytes?.('memory', this.#memory.bytes)
    }
    const onDisk = this.#file !== undefined && lookup.marks === undefined
    if (this.#redis === undefined && !onDisk) return
    const bytes = Buffer.byteLength(text)
    if (this.#redis !== undefined && lookup.redisNow !== undefined) {
      this.#redis.set(lookup.key, { text, storedAt: lookup.redisNow, expiresAt: lookup.redisNow + ttl * 1000 }, bytes, ttl)
    }
    if (onDisk) {
      const now = Date.now()
      this.#file?.set(lookup.key, { text, storedAt: now, expiresAt: now + ttl } satisfies StoredEntry, bytes)
    }
  }

  #layer (layer: CacheLayerName, outcome: LayerOutcome): void {
    const figures = this.#figures[layer]
    if (outcome === 'hit') figures.hits++
    else if (outcome === 'miss') figures.misses++
    else figures.unavailable++
    this.options.observer?.layer?.(layer, outcome)
  }
}

function uriMark (service: string, uri: string): string {
  return 'uri:' + createHash('sha256').update(`${service}\u0000${uri}`).digest('base64url')
}

function serviceMark (service: string): string {
  return 'service:' + createHash('sha256').update(service).digest('base64url')
}

/** The caller's cache directive, taken out of `_meta` so the upstream never sees it. */
function takeDirective (call: ForwardedCall): string | undefined {
  const meta = (call.params as Params)._meta as Record<string, unknown> | undefined
  if (meta === undefined || !(CACHE_META_KEY in meta)) return undefined
  const { [CACHE_META_KEY]: directive, ...rest } = meta
  call.params = { ...call.params, _meta: rest }
  return typeof directive === 'string' ? directive : undefined
}
