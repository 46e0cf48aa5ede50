import { Cancellation } from '../cancellation.js'
import type { ClientContext } from '../client-context.js'
import { ClientSession } from '../client-session.js'
import { UpstreamFailure } from '../errors.js'

/**
 * Hedged requests (`hedging`, off by default): a read-only call that has not answered within a percentile of its
 * replica's recent latency is sent a second time to another replica; the first answer wins and the other attempt
 * is cancelled (upstream too). Here: which calls may be hedged and after how long, and the race itself. The
 * forwarder owns the attempts (slots, sessions, retries) and hands them in.
 */

export interface HedgingSettings {
  /** Hedge after this percentile (50..99.9) of the replica's recent latency. */
  readonly percentile: number
  readonly minDelayMs: number
  /** Calls measured on the replica before its percentile is trusted. */
  readonly minSamples: number
}

/** What hedging needs to know of a call (the forwarder's ForwardedCall is one). */
export interface HedgeableCall {
  readonly service: string
  readonly readOnly?: boolean | undefined
  readonly upstream?: string | undefined
  readonly context: ClientContext
  readonly cancel: Cancellation | undefined
  readonly onProgress: unknown
  tried: Set<string> | undefined
  /** An attempt of a hedged call (the first or the hedge): not hedged again. */
  hedged?: boolean
  /** The replica its current attempt is on (what a hedge must avoid). */
  on?: string | undefined
}

/** What `hedgeDelay` asks of the gateway about the call's service and replica. */
export interface HedgeContext {
  /** Replicas the service has. */
  readonly replicas: number
  /** Whether the call would go to the replica's shared session (not a session of the caller's own). */
  readonly sharedSession: boolean
  /** The replica's latency at a quantile, and how many calls it rests on. */
  readonly latency: ((quantile: number) => { ms: number, samples: number }) | undefined
  /** The replica's call timeout (ms). */
  readonly timeout: number
}

/**
 * How long a read-only call waits on its replica before a hedge goes to another (undefined: not hedged) — only
 * calls that would be the same on any replica: on the shared session (the client keeps no state upstream, and
 * cannot be asked things twice), without a progress token (two replicas' progress would interleave), on a service
 * with another replica, once the replica's percentile rests on enough calls.
 */
export function hedgeDelay (call: HedgeableCall, settings: HedgingSettings, replica: () => HedgeContext): number | undefined {
  if (call.readOnly !== true || call.upstream !== undefined || call.onProgress !== undefined || call.cancel?.requested === true) return undefined
  // A client the upstream may ask things (sampling, elicitation, roots) would be asked by both replicas.
  const client = call.context
  if (client instanceof ClientSession && (client.declared('sampling') || client.declared('elicitation') || client.declared('roots'))) return undefined
  const { replicas, sharedSession, latency, timeout } = replica()
  if (replicas < 2 || latency === undefined || !sharedSession) return undefined
  const { ms, samples } = latency(settings.percentile / 100)
  const delay = Math.max(settings.minDelayMs, ms)
  // Past its deadline the first attempt times out anyway: a hedge then is only a retry, which a timeout never gets.
  return samples < settings.minSamples || delay >= timeout ? undefined : delay
}

/** The forwarder's side of a race: how to send each attempt, and whether a second may go. */
export interface HedgeAttempts<C extends HedgeableCall> {
  /** Sends the first attempt on the chosen replica. */
  first: (attempt: C) => Promise<unknown>
  /** Sends the hedge (to a replica not in `attempt.tried`). */
  second: (attempt: C) => Promise<unknown>
  /** Whether a replica not in `tried` may take the hedge now. */
  anotherReplica: (tried: Set<string>) => boolean
  /** Pays for the hedge from the retry budget; false: the budget is spent. */
  pay: () => boolean
  observer?: { hedge?: (outcome: 'sent' | 'won' | 'refused') => void } | undefined
}

/**
 * A hedged call: the first attempt on `replica`, and if it has not answered after `delay`, a second on another
 * replica; the first answer wins and the other attempt is cancelled. An upstream failure of one attempt waits for
 * the other; an answer — a JSON-RPC error included — settles it. The caller's cancellation cancels both.
 */
export function race<C extends HedgeableCall> (call: C, replica: string, delay: number, attempts: HedgeAttempts<C>): Promise<unknown> {
  const parent = call.cancel
  const first: C = { ...call, cancel: new Cancellation(), hedged: true }
  let second: C | undefined
  const observer = attempts.observer
  return new Promise((resolve, reject) => {
    let running = 1
    let done = false
    let firstFailure: unknown
    const finish = (winner: C | undefined) => {
      done = true
      clearTimeout(timer)
      parent?.listen(undefined)
      const loser = winner === first ? second : first
      if (winner !== undefined) loser?.cancel?.cancel('another replica answered first (hedged request)')
    }
    const answered = (attempt: C) => (result: unknown) => {
      running--
      if (done) return
      finish(attempt)
      if (attempt === second) observer?.hedge?.('won')
      resolve(result)
    }
    const failed = (attempt: C) => (err: unknown) => {
      running--
      if (done) return
      if (attempt === first) firstFailure = err
      // An answer, or the last attempt failing: settled. An upstream failure with the other still running: wait.
      if (!(err instanceof UpstreamFailure) || running === 0 || (attempt === first && second === undefined)) {
        finish(err instanceof UpstreamFailure ? undefined : attempt)
        reject(running === 0 && firstFailure !== undefined ? firstFailure : err)
      }
    }
    const timer = setTimeout(() => {
      // Not where the first attempt is now, nor where it was refused or failed.
      const tried = new Set(first.tried)
      tried.add(replica)
      if (first.on !== undefined) tried.add(first.on)
      if (done || parent?.requested === true || !attempts.anotherReplica(tried)) return
      if (!attempts.pay()) {
        observer?.hedge?.('refused')
        return
      }
      observer?.hedge?.('sent')
      second = { ...call, cancel: new Cancellation(), hedged: true, tried }
      running++
      attempts.second(second).then(answered(second), failed(second))
    }, delay)
    parent?.listen({
      cancelled: (reason) => {
        first.cancel?.cancel(reason)
        second?.cancel?.cancel(reason)
      }
    })
    if (parent?.requested === true) first.cancel?.cancel(parent.reason ?? 'cancelled')
    attempts.first(first).then(answered(first), failed(first))
  })
}
