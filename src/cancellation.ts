/**
 * A one-shot cancellation hook for calls in flight. AbortController/AbortSignal are EventTargets and cost more
 * than a forwarded call's whole bookkeeping; this is what the hot path uses instead. Public APIs still accept an
 * AbortSignal (`fromSignal`).
 */

export interface CancellationListener {
  cancelled (reason: string): void
}

export class Cancellation {
  reason: string | undefined
  /** The requester itself withdrew the request (notifications/cancelled): it expects no answer. */
  withdrawn = false
  #listener: CancellationListener | undefined

  get requested (): boolean {
    return this.reason !== undefined
  }

  cancel (reason: string): void {
    if (this.reason !== undefined) return
    this.reason = reason
    this.#listener?.cancelled(reason)
  }

  /** The requester cancelled its own request: stop it, and send no answer (the spec's SHOULD NOT respond). */
  withdraw (reason: string): void {
    if (this.reason === undefined) this.withdrawn = true
    this.cancel(reason)
  }

  /** One listener at a time: the call currently in flight. */
  listen (listener: CancellationListener | undefined): void {
    this.#listener = listener
  }

  static fromSignal (signal: AbortSignal): Cancellation {
    const cancellation = new Cancellation()
    const reasonOf = () => signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted')
    if (signal.aborted) cancellation.cancel(reasonOf())
    else signal.addEventListener('abort', () => cancellation.cancel(reasonOf()), { once: true })
    return cancellation
  }
}
