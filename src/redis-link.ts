import { Redis } from 'ioredis'
import { redact } from './errors.js'
import type { Logger } from './logger.js'

/**
 * One connection to Redis for a concern that must keep serving without it (the shared rate limits, the result
 * cache's Redis layer): commands never queue behind a connection that is not there (the offline queue is off), wait
 * at most `commandTimeout`, and a failure makes Redis "in doubt" — said once at warn, shown in `status` — until a
 * command succeeds again (said once at info). A command that times out drops the connection (ioredis reconnects,
 * backing off): commands pipelined behind it would run late. While Redis is in doubt, one command at a time tries it
 * (the probe); the others do without.
 */

export interface RedisLinkOptions {
  url: string
  /** ms a command waits for Redis before the caller does without. */
  commandTimeout: number
  /** The client's name in Redis's CLIENT LIST. */
  connectionName: string
  log: Logger
  /** Logged at warn when Redis becomes unavailable, and at info when it answers again. */
  messages: { readonly lost: string, readonly back: string }
  /** Connected again after an outage, with no probe under way: a chance to prove Redis works without traffic. */
  onReconnect?: () => void
}

export type RedisState = 'connecting' | 'ready' | 'unavailable'

export interface RedisStatus {
  readonly state: RedisState
  readonly since: string
  readonly reason?: string
}

/** What a caller may do now: send a command, send it as the one probe while Redis is in doubt, or do without. */
export type Admission = 'send' | 'probe' | undefined

export class RedisLink {
  readonly client: Redis
  readonly #log: Logger
  readonly #messages: RedisLinkOptions['messages']
  readonly #createdAt = new Date()
  #connected = false
  #readySince: Date | undefined
  /** Since when Redis is in doubt (undefined: it is not). */
  #degradedSince: Date | undefined
  #reason = ''
  #probing = false
  #closed = false

  constructor (options: RedisLinkOptions) {
    this.#log = options.log
    this.#messages = options.messages
    this.client = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeout,
      connectTimeout: Math.max(1000, options.commandTimeout * 5),
      connectionName: options.connectionName,
      // Reconnect for ever, backing off to 5 s, jittered so many gateways do not reconnect in step.
      retryStrategy: (times) => Math.min(5000, 100 * 2 ** Math.min(times, 6)) * (0.75 + Math.random() * 0.5)
    })
    this.client.on('ready', () => {
      this.#connected = true
      this.#readySince = new Date()
      if (this.#degradedSince !== undefined && !this.#probing) options.onReconnect?.()
    })
    this.client.on('error', (err: Error) => this.#lost(err))
    this.client.on('close', () => this.#lost(new Error('connection closed')))
  }

  /** Whether a command may be sent now; each 'send' or 'probe' must be followed by succeeded() or failed(). */
  admit (): Admission {
    if (!this.#connected) return undefined
    if (this.#degradedSince === undefined) return 'send'
    if (this.#probing) return undefined
    this.#probing = true
    return 'probe'
  }

  succeeded (admission: Admission): void {
    if (admission === 'probe') this.#probing = false
    if (this.#degradedSince === undefined) return
    this.#degradedSince = undefined
    this.#log.info({}, this.#messages.back)
  }

  failed (admission: Admission, err: Error): void {
    if (admission === 'probe') this.#probing = false
    this.#degraded(err)
    // A command that timed out may still be queued on the connection: drop it, so it cannot run late.
    if (this.#connected) this.client.disconnect(true)
  }

  /** In doubt: a command failed, or the connection is gone, and nothing has succeeded since. */
  get degraded (): boolean {
    return this.#degradedSince !== undefined
  }

  get status (): RedisStatus {
    if (this.#degradedSince !== undefined) return { state: 'unavailable', since: this.#degradedSince.toISOString(), reason: this.#reason }
    if (!this.#connected || this.#readySince === undefined) return { state: 'connecting', since: this.#createdAt.toISOString() }
    return { state: 'ready', since: this.#readySince.toISOString() }
  }

  close (): void {
    this.#closed = true
    this.client.disconnect()
  }

  #lost (err: Error): void {
    this.#connected = false
    this.#degraded(err)
  }

  #degraded (err: Error): void {
    if (this.#closed || this.#degradedSince !== undefined) return
    this.#degradedSince = new Date()
    this.#reason = redact(err.message)
    this.#log.warn({ reason: this.#reason }, this.#messages.lost)
  }
}
