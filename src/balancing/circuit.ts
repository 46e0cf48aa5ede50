/**
 * A circuit breaker per upstream, fed by the calls the forwarder makes: `failureThreshold` upstream failures in a
 * row (timeouts, dropped connections, HTTP errors — not tool errors or JSON-RPC errors, which are answers) open it;
 * while open the balancer leaves the upstream out, and a service with every replica open fails fast; after `openMs`
 * it is half-open and lets `halfOpenCalls` probe calls through: one that succeeds closes it, one that fails opens it
 * again for twice as long (up to `maxOpenMs`). This is what a connection's health check cannot see: an upstream that
 * is connected and answers pings but fails its calls.
 */

export interface CircuitSettings {
  /** Failures in a row that open the circuit; 0: never. */
  readonly failureThreshold: number
  readonly openMs: number
  readonly maxOpenMs: number
  readonly halfOpenCalls: number
}

export type CircuitState = 'closed' | 'open' | 'half-open'

export interface CircuitReport {
  readonly state: CircuitState
  /** Failures in a row so far. */
  readonly failures: number
  /** How many times it opened since it was last closed by a success (its open time doubles with each). */
  readonly opens: number
  /** While open: ms until it turns half-open. */
  readonly retryAfterMs?: number
}

class Circuit {
  state: CircuitState = 'closed'
  failures = 0
  opens = 0
  openUntil = 0
  probes = 0
}

export type CircuitListener = (id: string, from: CircuitState, to: CircuitState) => void

export class CircuitBreakers {
  readonly #circuits = new Map<string, Circuit>()

  constructor (
    private readonly settings: CircuitSettings,
    private readonly listener: CircuitListener = () => {},
    private readonly now: () => number = Date.now
  ) {}

  /** Whether a call may go to `id` now (an open circuit whose time is up turns half-open here). */
  allows (id: string): boolean {
    const circuit = this.#circuits.get(id)
    if (circuit === undefined || circuit.state === 'closed') return true
    if (circuit.state === 'open') {
      if (this.now() < circuit.openUntil) return false
      this.#move(id, circuit, 'half-open')
      circuit.probes = 0
    }
    return circuit.probes < this.settings.halfOpenCalls
  }

  started (id: string): void {
    const circuit = this.#circuits.get(id)
    if (circuit?.state === 'half-open') circuit.probes++
  }

  /** A call ended without a verdict on the upstream (cancelled): a half-open probe slot it held is free again. */
  abandoned (id: string): void {
    const circuit = this.#circuits.get(id)
    if (circuit?.state === 'half-open') circuit.probes = Math.max(0, circuit.probes - 1)
  }

  succeeded (id: string): void {
    const circuit = this.#circuits.get(id)
    if (circuit === undefined) return
    circuit.failures = 0
    if (circuit.state !== 'closed') {
      circuit.opens = 0
      circuit.probes = 0
      this.#move(id, circuit, 'closed')
    }
  }

  failed (id: string): void {
    if (this.settings.failureThreshold === 0) return
    let circuit = this.#circuits.get(id)
    if (circuit?.state === 'open') return
    if (circuit === undefined) this.#circuits.set(id, circuit = new Circuit())
    circuit.failures++
    if (circuit.state === 'half-open' || (circuit.state === 'closed' && circuit.failures >= this.settings.failureThreshold)) {
      const openFor = Math.min(this.settings.maxOpenMs, this.settings.openMs * 2 ** circuit.opens)
      circuit.opens++
      circuit.openUntil = this.now() + openFor
      this.#move(id, circuit, 'open')
    }
  }

  /**
   * The upstream reconnected after it was down: what opened the circuit was most likely the connection going away,
   * so an open circuit turns half-open at once — the next call probes it — instead of waiting out its time.
   */
  reconnected (id: string): void {
    const circuit = this.#circuits.get(id)
    if (circuit?.state !== 'open') return
    circuit.probes = 0
    this.#move(id, circuit, 'half-open')
  }

  report (id: string): CircuitReport {
    const circuit = this.#circuits.get(id)
    if (circuit === undefined) return CLOSED
    const open = circuit.state === 'open' && this.now() < circuit.openUntil
    return {
      // Open with its time up: the next call finds it half-open (allows() moves it).
      state: circuit.state === 'open' && !open ? 'half-open' : circuit.state,
      failures: circuit.failures,
      opens: circuit.opens,
      ...(open ? { retryAfterMs: Math.max(0, circuit.openUntil - this.now()) } : {})
    }
  }

  forget (id: string): void {
    this.#circuits.delete(id)
  }

  #move (id: string, circuit: Circuit, to: CircuitState): void {
    const from = circuit.state
    circuit.state = to
    this.listener(id, from, to)
  }
}

const CLOSED: CircuitReport = Object.freeze({ state: 'closed', failures: 0, opens: 0 })
