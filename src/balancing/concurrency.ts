import type { Cancellation, CancellationListener } from '../cancellation.js'
import { ERR_REQUEST_CANCELLED, ERR_UPSTREAM_BUSY } from '../errors.js'

/**
 * Per upstream, at most `maxConcurrent` calls in flight (0: no limit); beyond it, calls wait in a queue of at most
 * `queue.size` for up to `queue.timeoutMs`, first come first served; beyond that a call is refused at once with
 * ERR_UPSTREAM_BUSY — never sent, so the forwarder tries another replica, and the client hears 503 only when none
 * has room. A call cancelled while it waits leaves the queue. One small record per upstream that has a limit.
 */

export interface ConcurrencyLimit {
  readonly id: string
  readonly maxConcurrent: number
  readonly queue: { readonly size: number, readonly timeoutMs: number }
}

export interface GateFigures {
  readonly running: number
  readonly queued: number
}

class Waiter implements CancellationListener {
  timer: NodeJS.Timeout | undefined
  readonly since = performance.now()

  constructor (
    readonly gate: Gate,
    readonly resolve: () => void,
    readonly reject: (err: Error) => void,
    readonly cancel: Cancellation | undefined
  ) {}

  cancelled (reason: string): void {
    this.gate.leave(this)
    this.reject(new ERR_REQUEST_CANCELLED(reason))
  }
}

class Gate implements GateFigures {
  running = 0
  readonly waiting: Waiter[] = []

  get queued (): number {
    return this.waiting.length
  }

  leave (waiter: Waiter): void {
    const i = this.waiting.indexOf(waiter)
    if (i !== -1) this.waiting.splice(i, 1)
    clearTimeout(waiter.timer)
    waiter.cancel?.listen(undefined)
  }
}

export type RefusalReason = 'full' | 'timeout'

/** Told of what the gates do (metrics). */
export interface GateObserver {
  /** A call was refused: the queue was `full`, or no slot came free in time (`timeout`). */
  refused? (id: string, reason: RefusalReason): void
  /** A call that waited got its slot after `ms`. */
  waited? (id: string, ms: number): void
}

export class ConcurrencyGates {
  readonly #gates = new Map<string, Gate>()

  constructor (private readonly observer: GateObserver = {}) {}

  /** Takes a slot for a call to `limit.id`. undefined: taken at once; else resolves once taken, or rejects. */
  acquire (limit: ConcurrencyLimit, cancel?: Cancellation): Promise<void> | undefined {
    if (limit.maxConcurrent === 0) return undefined
    if (cancel?.requested === true) return Promise.reject(new ERR_REQUEST_CANCELLED(cancel.reason ?? 'cancelled'))
    let gate = this.#gates.get(limit.id)
    if (gate === undefined) this.#gates.set(limit.id, gate = new Gate())
    if (gate.running < limit.maxConcurrent) {
      gate.running++
      return undefined
    }
    if (gate.waiting.length >= limit.queue.size) {
      this.observer.refused?.(limit.id, 'full')
      return Promise.reject(new ERR_UPSTREAM_BUSY(limit.id, `${limit.maxConcurrent} calls in flight and ${limit.queue.size} waiting (maxConcurrent, queue.size)`))
    }
    const found = gate
    return new Promise<void>((resolve, reject) => {
      const waiter = new Waiter(found, resolve, reject, cancel)
      waiter.timer = setTimeout(() => {
        found.leave(waiter)
        this.observer.refused?.(limit.id, 'timeout')
        reject(new ERR_UPSTREAM_BUSY(limit.id, `no call slot came free within ${limit.queue.timeoutMs} ms (queue.timeoutMs)`))
      }, limit.queue.timeoutMs)
      found.waiting.push(waiter)
      cancel?.listen(waiter)
    })
  }

  /** A call that took a slot ended: the slot goes to the first waiting call, if any. */
  release (id: string): void {
    const gate = this.#gates.get(id)
    if (gate === undefined) return
    const next = gate.waiting.shift()
    if (next === undefined) {
      gate.running = Math.max(0, gate.running - 1)
      return
    }
    clearTimeout(next.timer)
    next.cancel?.listen(undefined)
    this.observer.waited?.(id, performance.now() - next.since)
    next.resolve()
  }

  figures (id: string): GateFigures {
    const gate = this.#gates.get(id)
    return gate === undefined ? IDLE : { running: gate.running, queued: gate.queued }
  }

  forget (id: string): void {
    const gate = this.#gates.get(id)
    if (gate === undefined) return
    this.#gates.delete(id)
    for (const waiter of gate.waiting.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.cancel?.listen(undefined)
      waiter.reject(new ERR_UPSTREAM_BUSY(id, 'the upstream was reconfigured or removed while the call waited'))
    }
  }
}

const IDLE: GateFigures = Object.freeze({ running: 0, queued: 0 })
