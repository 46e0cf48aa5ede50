import type { JsonRpcId } from '../schemas/jsonrpc.js'
import type { Cancellation } from './cancellation.js'

/**
 * The forwarded calls one client session has in flight, by the client's request id, so `notifications/cancelled`
 * can reach them. Ids must be unique within a session (the spec), but careless clients reuse one while it is in
 * flight (a script that always sends `"id": 1`); such calls are all kept and counted, and a cancellation of the id
 * reaches every one of them. Reuse is rare, so it is kept apart: the common case costs one map entry per call.
 */
export class CallsInFlight {
  readonly #byId = new Map<JsonRpcId, Cancellation>()
  /** Further calls under an id that is in use already. */
  readonly #reused = new Map<JsonRpcId, Cancellation[]>()
  #size = 0

  /** Calls in flight, reused ids included. */
  get size (): number {
    return this.#size
  }

  add (id: JsonRpcId, cancel: Cancellation): void {
    this.#size++
    if (!this.#byId.has(id)) {
      this.#byId.set(id, cancel)
      return
    }
    const more = this.#reused.get(id)
    if (more === undefined) this.#reused.set(id, [cancel])
    else more.push(cancel)
  }

  /** The call ended (answered, failed or cancelled). */
  delete (id: JsonRpcId, cancel: Cancellation): void {
    const more = this.#reused.get(id)
    if (this.#byId.get(id) === cancel) {
      this.#size--
      const next = more?.shift()
      if (next === undefined) this.#byId.delete(id)
      else this.#byId.set(id, next)
    } else {
      const at = more?.indexOf(cancel) ?? -1
      if (at === -1) return
      more?.splice(at, 1)
      this.#size--
    }
    if (more?.length === 0) this.#reused.delete(id)
  }

  /** The client cancelled `id`: every call under it is withdrawn (it expects no answer). */
  withdraw (id: JsonRpcId, reason: string): void {
    this.#byId.get(id)?.withdraw(reason)
    for (const cancel of this.#reused.get(id) ?? []) cancel.withdraw(reason)
  }

  /** The session ended: every call is cancelled. */
  cancelAll (reason: string): void {
    for (const cancel of this.#byId.values()) cancel.cancel(reason)
    for (const more of this.#reused.values()) for (const cancel of more) cancel.cancel(reason)
  }
}
