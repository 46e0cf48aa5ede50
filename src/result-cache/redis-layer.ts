import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { RedisLink, type RedisStatus } from '../redis-link.js'
import { decodeEntry, encodeEntry, type StoredEntry } from './entry.js'

/**
 * The second layer: results in the Redis every gateway instance shares (top-level `redis`), under
 * `<keyPrefix>cache:<key>`, each with its TTL (PX). Keys depend only on what the caller may see and what it asked, so
 * one instance's miss is another's hit. A lookup is one script run that also reads Redis's clock and the
 * invalidation marks that concern the entry (`<keyPrefix>cache:mark:<name>`), so resource entries are judged on one
 * clock, whichever instance heard the update. Redis never makes a call fail or wait past `commandTimeout`: away,
 * slow, in doubt (one probe at a time, RedisLink) or with too many commands in flight, a lookup is a miss and a store
 * is skipped. Invalidations that could not be sent are kept (bounded) and sent when Redis is back.
 */

/** Commands in flight at most: past it, lookups are misses and stores are skipped (nothing queues without bound). */
const MAX_IN_FLIGHT = 256
/** Invalidations kept while Redis is away; past it, one mark of everything is sent instead. */
const MAX_PENDING_MARKS = 10_000
/** The mark that makes every resource entry stale (pending invalidations overflowed). */
export const MARK_ALL = 'all'

/**
 * KEYS[1]: the entry, KEYS[2..]: marks; ARGV[1]: the longest entry read. Returns {now, entry or '', latest mark}, on
 * Redis's clock in µs (a read looked up right after an invalidation is not taken for one before it). pcall: a key of
 * another type is a miss, not an error.
 */
const LOOKUP_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local value = ''
local size = redis.pcall('STRLEN', KEYS[1])
if type(size) == 'number' and size > 0 and size <= tonumber(ARGV[1]) then
  local v = redis.pcall('GET', KEYS[1])
  if type(v) == 'string' then value = v end
end
local mark = 0
for i = 2, #KEYS do
  local m = redis.pcall('GET', KEYS[i])
  if type(m) == 'string' then
    local n = tonumber(m)
    if n ~= nil and n > mark then mark = n end
  end
end
return {string.format('%d', now), value, string.format('%d', mark)}
`

/** KEYS: marks; ARGV: their TTLs (ms). Sets each to Redis's clock now (µs). */
const MARK_SCRIPT = `
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]))
for i = 1, #KEYS do redis.call('SET', KEYS[i], now, 'PX', ARGV[i]) end
return now
`

type WithScripts = Redis & {
  mcpGatewayCacheLookup (...args: Array<string | number>): Promise<[string, string, string]>
  mcpGatewayCacheMark (...args: Array<string | number>): Promise<string>
}

export interface RedisLayerOptions {
  url: string
  keyPrefix: string
  commandTimeout: number
  /** The longest entry (UTF-8 bytes of the result) stored or read. */
  maxEntryBytes: number
  log: Logger
}

/** A lookup's answer: Redis's clock (µs), and the entry when there is a good one (its times in µs too). */
export interface RedisLookup {
  readonly now: number
  readonly entry: StoredEntry | undefined
}

export class RedisLayer {
  readonly #link: RedisLink
  readonly #redis: WithScripts
  readonly #prefix: string
  readonly #maxEntryBytes: number
  /** Marks to send, with their TTLs: what Redis missed while it was away. */
  readonly #pending = new Map<string, number>()
  #inFlight = 0
  #flushing = false

  constructor (options: RedisLayerOptions) {
    this.#prefix = options.keyPrefix + 'cache:'
    this.#maxEntryBytes = options.maxEntryBytes
    this.#link = new RedisLink({
      url: options.url,
      commandTimeout: options.commandTimeout,
      connectionName: 'mcp-gateway-cache',
      log: options.log,
      messages: {
        lost: 'result cache: Redis is unavailable; its layer is skipped (lookups miss there) until it is back',
        back: 'result cache: Redis answers again; its layer is shared again'
      },
      // Connected again: what Redis missed goes now, or a ping proves it answers, so /status is right without traffic.
      onReconnect: () => { if (this.#pending.size > 0) this.#flush(); else this.#ping() }
    })
    this.#redis = this.#link.client as WithScripts
    this.#redis.defineCommand('mcpGatewayCacheLookup', { lua: LOOKUP_SCRIPT })
    this.#redis.defineCommand('mcpGatewayCacheMark', { lua: MARK_SCRIPT })
  }

  /** The entry under `key` unless a mark in `marks` is as late as its lookup; undefined: Redis could not tell. */
  get (key: string, marks: readonly string[]): Promise<RedisLookup | undefined> | undefined {
    const admission = this.#admit()
    if (admission === undefined) return undefined
    const args: Array<string | number> = [1 + marks.length, this.#prefix + key]
    for (const mark of marks) args.push(this.#prefix + 'mark:' + mark)
    // The header and the key travel too: a result of maxEntryBytes fits whatever its header.
    args.push(this.#maxEntryBytes + 64)
    return this.#redis.mcpGatewayCacheLookup(...args).then(
      ([now, value, mark]) => {
        this.#done(admission)
        const at = Number(now)
        const entry = value === '' ? undefined : decodeEntry(value)
        const good = entry !== undefined && entry.expiresAt > at && entry.storedAt > Number(mark)
        return { now: at, entry: good ? entry : undefined }
      },
      (err: Error) => {
        this.#failed(admission, err)
        return undefined
      }
    )
  }

  /** Stores `entry` (its times on Redis's clock, µs) for `ttlMs`, if Redis takes commands now; a result over maxEntryBytes is not stored. */
  set (key: string, entry: StoredEntry, bytes: number, ttlMs: number): void {
    if (bytes > this.#maxEntryBytes || ttlMs <= 0) return
    const admission = this.#admit()
    if (admission === undefined) return
    this.#redis.set(this.#prefix + key, encodeEntry(entry), 'PX', ttlMs).then(
      () => this.#done(admission),
      (err: Error) => this.#failed(admission, err)
    )
  }

  /** Marks `names` as invalidated now (Redis's clock), each kept `ttlMs` (as long as an entry they concern can live). */
  invalidate (names: readonly string[], ttlMs: number): void {
    for (const name of names) {
      if (this.#pending.size >= MAX_PENDING_MARKS && !this.#pending.has(name)) {
        const longest = Math.max(ttlMs, ...this.#pending.values())
        this.#pending.clear()
        this.#pending.set(MARK_ALL, longest)
        break
      }
      this.#pending.set(name, Math.max(ttlMs, this.#pending.get(name) ?? 0))
    }
    this.#flush()
  }

  get status (): RedisStatus {
    return this.#link.status
  }

  /** Invalidations Redis has not had yet. */
  get pendingMarks (): number {
    return this.#pending.size
  }

  close (): void {
    this.#link.close()
  }

  /** Sends the pending marks in one script run; those that fail stay pending, and go with the next try. */
  #flush (): void {
    if (this.#flushing || this.#pending.size === 0) return
    const admission = this.#admit()
    if (admission === undefined) return
    this.#flushing = true
    const sent = [...this.#pending]
    this.#pending.clear()
    const args: Array<string | number> = [sent.length]
    for (const [name] of sent) args.push(this.#prefix + 'mark:' + name)
    for (const [, ttl] of sent) args.push(ttl)
    this.#redis.mcpGatewayCacheMark(...args).then(
      () => {
        this.#flushing = false
        this.#done(admission)
        this.#flush()
      },
      (err: Error) => {
        this.#flushing = false
        for (const [name, ttl] of sent) if (!this.#pending.has(name)) this.#pending.set(name, ttl)
        this.#failed(admission, err)
      }
    )
  }

  #ping (): void {
    const admission = this.#admit()
    if (admission === undefined) return
    this.#redis.ping().then(() => this.#done(admission), (err: Error) => this.#failed(admission, err))
  }

  #admit (): ReturnType<RedisLink['admit']> {
    if (this.#inFlight >= MAX_IN_FLIGHT) return undefined
    const admission = this.#link.admit()
    if (admission !== undefined) this.#inFlight++
    return admission
  }

  #done (admission: ReturnType<RedisLink['admit']>): void {
    this.#inFlight--
    const wasDegraded = this.#link.degraded
    this.#link.succeeded(admission)
    // Back after an outage: what it missed goes now.
    if (wasDegraded) this.#flush()
  }

  #failed (admission: ReturnType<RedisLink['admit']>, err: Error): void {
    this.#inFlight--
    this.#link.failed(admission, err)
  }
}
