import { randomUUID } from 'node:crypto'
import type { JsonRpcId } from '../schemas/jsonrpc.js'
import type { Cancellation } from './cancellation.js'
import { ERR_SESSION_LIMIT } from './errors.js'
import type { UpstreamSession } from './upstream/session.js'

/**
 * Downstream sessions: what one client holds with the gateway, and the upstream sessions opened for it. Sessions
 * unused for `idleTimeout` are ended by a sweeper (unless a stream or a call is still open on them).
 */

/** Where the gateway writes messages the client did not ask for on a request (its GET stream). */
export interface MessageSink {
  send (message: string): void
  close (): void
}

export interface ClientInfo {
  name: string
  version: string
  [key: string]: unknown
}

export interface SessionInit {
  protocolVersion: string
  capabilities: Record<string, unknown>
  clientInfo: ClientInfo
}

export class ClientSession {
  readonly id = randomUUID()
  readonly createdAt = Date.now()
  lastSeen = this.createdAt
  /** Set when the client's notifications/initialized arrived. */
  initialized = false
  /** Upstream id → the session opened for this client there, or the promise of it while it opens. */
  readonly upstreams = new Map<string, UpstreamSession | Promise<UpstreamSession>>()
  /** Calls in flight, by the client's request id: cancelling one cancels it upstream. */
  readonly inFlight = new Map<JsonRpcId, Cancellation>()
  stream: MessageSink | undefined
  closed = false

  constructor (readonly init: SessionInit) {}

  get protocolVersion (): string {
    return this.init.protocolVersion
  }

  /** Delivers a message on the client's GET stream; false when no stream is open. */
  push (message: string): boolean {
    if (this.stream === undefined) return false
    this.stream.send(message)
    return true
  }
}

export interface SessionStoreOptions {
  idleTimeout: number
  max: number
  /** Called for every session that ends (deleted, expired or closed with the store). */
  onEnd: (session: ClientSession) => void
}

export class SessionStore {
  readonly #sessions = new Map<string, ClientSession>()
  #sweeper: NodeJS.Timeout | undefined

  constructor (private readonly options: SessionStoreOptions) {}

  get size (): number {
    return this.#sessions.size
  }

  create (init: SessionInit): ClientSession {
    if (this.#sessions.size >= this.options.max) throw new ERR_SESSION_LIMIT(this.options.max)
    const session = new ClientSession(init)
    this.#sessions.set(session.id, session)
    return session
  }

  get (id: string): ClientSession | undefined {
    return this.#sessions.get(id)
  }

  delete (id: string): boolean {
    const session = this.#sessions.get(id)
    if (session === undefined) return false
    this.#end(session)
    return true
  }

  all (): IterableIterator<ClientSession> {
    return this.#sessions.values()
  }

  startSweeper (): void {
    if (this.#sweeper !== undefined) return
    const period = Math.max(1000, Math.min(60_000, Math.floor(this.options.idleTimeout / 2)))
    this.#sweeper = setInterval(() => this.sweep(Date.now()), period)
    this.#sweeper.unref()
  }

  /** Ends sessions idle for longer than idleTimeout; returns how many. */
  sweep (now: number): number {
    let ended = 0
    for (const session of this.#sessions.values()) {
      if (session.stream !== undefined || session.inFlight.size > 0) continue
      if (now - session.lastSeen > this.options.idleTimeout) {
        this.#end(session)
        ended++
      }
    }
    return ended
  }

  closeAll (): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const session of [...this.#sessions.values()]) this.#end(session)
  }

  #end (session: ClientSession): void {
    this.#sessions.delete(session.id)
    session.closed = true
    for (const call of session.inFlight.values()) call.cancel('the session ended')
    session.stream?.close()
    session.stream = undefined
    this.options.onEnd(session)
  }
}
