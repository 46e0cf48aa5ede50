import type { JsonRpcId, Params } from '../../schemas/jsonrpc.js'
import type { Cancellation, CancellationListener } from '../cancellation.js'
import { ERR_REQUEST_CANCELLED, ERR_UPSTREAM_TIMEOUT } from '../errors.js'

/**
 * One request the gateway has in flight on an upstream session: its deadline, its cancellation, and where its
 * answer goes. The session that sent it owns it (keeps it by id until it settles); this file knows the session only
 * through what a request needs of it.
 */

/** Opaque to the session: the proxy's record of the downstream request a call serves. */
export interface RequestOrigin {
  readonly requestId: JsonRpcId
}

/** What a request needs of the session that sent it. */
export interface PendingOwner {
  readonly serverId: string
  /** The request in flight under this id, if any. */
  pendingRequest (id: JsonRpcId): Pending | undefined
  /** Drops the request; false when it was settled already. */
  forget (pending: Pending): boolean
  /** Fails the request with `err` and tells the server to stop working on it. */
  cancelPending (pending: Pending, err: Error): void
}

/** Lets a transport stop carrying a request (the HTTP exchange of a POST). */
export interface TransportHandle {
  abort (reason: Error): void
}

/** One request in flight: its deadline, its cancellation and where its answer goes. */
export class Pending implements CancellationListener {
  timer: NodeJS.Timeout | undefined
  /** Set by transports that can abort the exchange carrying this request. */
  handle: TransportHandle | undefined
  /** HTTP headers for this request alone (see RequestOptions.headers). */
  headers: Readonly<Record<string, string>> | undefined
  /** A health check (see RequestOptions.check). */
  check = false

  constructor (
    readonly session: PendingOwner,
    readonly id: number,
    readonly method: string,
    readonly onProgress: ((params: Params) => void) | undefined,
    /** The caller takes a RawResult (see RequestOptions.raw). */
    readonly raw: boolean,
    readonly origin: RequestOrigin | undefined,
    private readonly cancellation: Cancellation | undefined,
    private readonly onResolve: (result: unknown) => void,
    private readonly onReject: (err: Error) => void
  ) {}

  get settled (): boolean {
    return this.session.pendingRequest(this.id) !== this
  }

  resolve (result: unknown): void {
    if (this.#settle()) this.onResolve(result)
  }

  reject (err: Error): void {
    if (this.#settle()) this.onReject(err)
  }

  /** The downstream client cancelled: fail the call and tell the upstream to stop. */
  cancelled (reason: string): void {
    this.session.cancelPending(this, new ERR_REQUEST_CANCELLED(reason))
  }

  #settle (): boolean {
    if (!this.session.forget(this)) return false
    clearTimeout(this.timer)
    this.cancellation?.listen(undefined)
    return true
  }
}

/** The deadline timer's callback (a plain function, so the timer holds no closure). */
export function onDeadline (pending: Pending, timeout: number): void {
  pending.session.cancelPending(pending, new ERR_UPSTREAM_TIMEOUT(pending.session.serverId, pending.method, timeout))
}
