// `npm run bench:faults`: what clients see when replicas fail, slow down or are overloaded, through the built
// gateway in front of three fault-replica.mjs upstreams that answer in ~50 ms. Bounded runs; every process is a
// child of this one, stopped by PID. Calls go through the REST endpoint (POST /mcp/tools/call) from a closed loop of
// concurrent callers, each call with a client-side deadline so one without an answer is counted, not waited for.
// Scenarios: a replica killed with SIGKILL under load and started again; one replica made 10× slower (the default
// strategy against round-robin); a flapping replica, down 2 s / up 2 s three times — its process killed and started
// again, or running and answering every tools/call with HTTP 500 (what a health check cannot see and the circuit
// breaker must), with the circuit transitions the gateway's /metrics counted; twice the upstreams' capacity against
// maxConcurrent + queue. Prints the figures; exits 1 only when something failed functionally (a child died, the
// gateway never became ready).
// Settings: FAULTS_CONCURRENCY (default 24).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { Child, freePort } from './children.mjs'

const file = (path) => fileURLToPath(new URL(path, import.meta.url))
const GATEWAY_CLI = file('../../dist/src/cli.js')
const REPLICA = file('./fault-replica.mjs')
const READY_TIMEOUT = 20_000
const CALL_DEADLINE = 15_000
const CONCURRENCY = Number(process.env.FAULTS_CONCURRENCY ?? 24)
const FLAP_MS = 2000
const FLAP_CYCLES = 3

const children = []
const dirs = []
const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 })

function start (name, path, args, options) {
  const child = new Child(name, path, args, options)
  children.push(child)
  return child
}

async function replica (name, port = 0, delay = 50) {
  const child = start(name, REPLICA, [name, String(port), String(delay)])
  const { port: bound } = await child.firstMessage(READY_TIMEOUT)
  return { name, child, port: bound }
}

async function gateway (replicas, extra = {}) {
  const dir = await mkdtemp(join(os.tmpdir(), 'mcp-gateway-faults-'))
  dirs.push(dir)
  const config = join(dir, 'gateway.json')
  const { servers: serverExtra = {}, ...top } = extra
  await writeFile(config, JSON.stringify({
    logLevel: 'warn',
    metrics: { defaultMetrics: false },
    shutdownTimeout: 2000,
    upstreamDefaults: { reconnectMin: 100, reconnectMax: 2000, healthInterval: 2000, timeout: 10_000 },
    ...top,
    servers: replicas.map(r => ({ id: r.name, service: 'svc', url: `http://127.0.0.1:${r.port}/mcp`, ...serverExtra }))
  }))
  const port = await freePort()
  const child = start('gateway', GATEWAY_CLI, ['--config', config, '--port', String(port), '--host', '127.0.0.1'], { preload: true })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + READY_TIMEOUT
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`the gateway exited: ${child.describe()}`)
    try {
      const res = await fetch(base + '/health')
      const health = await res.json()
      if (health.servers?.up === replicas.length) return { base, child }
    } catch {}
    await sleep(100)
  }
  throw new Error(`the gateway was not ready: ${child.describe()}`)
}

/** One call: what came back, from which replica, how long it took. */
async function call (base, tool) {
  const started = performance.now()
  try {
    const res = await request(base + '/mcp/tools/call', {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `svc__${tool}`, arguments: {} }),
      signal: AbortSignal.timeout(CALL_DEADLINE)
    })
    const body = await res.body.json()
    return { tool, at: started, ms: performance.now() - started, status: res.statusCode, replica: body.content?.[0]?.text, code: body.code, message: body.message }
  } catch (err) {
    return { tool, at: started, ms: performance.now() - started, status: 0, code: err.name === 'TimeoutError' ? 'NO_ANSWER' : err.code ?? err.name }
  }
}

/** A closed loop of `concurrency` callers for `seconds`; `tools` cycles. `during` runs alongside (the fault). */
async function load (base, seconds, concurrency, tools, during = async () => {}) {
  const calls = []
  const end = performance.now() + seconds * 1000
  let n = 0
  const callers = Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) calls.push(await call(base, tools[n++ % tools.length]))
  })
  await Promise.all([...callers, during()])
  return calls
}

const quantile = (values, q) => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}
const fmt = (ms) => ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`

async function killAndRestart () {
  const replicas = [await replica('r0'), await replica('r1'), await replica('r2')]
  const gw = await gateway(replicas)
  const victim = replicas[2]
  const t0 = performance.now()
  let killedAt = 0
  let restartedAt = 0
  const calls = await load(gw.base, 10, CONCURRENCY, ['read', 'write'], async () => {
    await sleep(3000)
    killedAt = performance.now()
    victim.child.process.kill('SIGKILL')
    await sleep(3000)
    restartedAt = performance.now()
    const again = await replica('r2', victim.port)
    replicas[2] = again
  })
  // Every call that ended after the kill: those in flight on the victim at that moment included.
  const after = calls.filter(c => c.at + c.ms >= killedAt)
  const failed = (tool) => after.filter(c => c.tool === tool && c.status !== 200)
  const inFlight = calls.filter(c => c.at < killedAt && c.at + c.ms >= killedAt)
  const lastVictimError = Math.max(0, ...after.filter(c => c.status !== 200 && c.at < restartedAt).map(c => c.at + c.ms))
  const firstBack = calls.filter(c => c.replica === 'r2' && c.at >= restartedAt).map(c => c.at + c.ms).sort((a, b) => a - b)[0]
  const codes = {}
  for (const c of failed('write')) codes[c.code ?? c.status] = (codes[c.code ?? c.status] ?? 0) + 1
  return {
    calls: calls.length,
    'read-only calls failed after the kill': `${failed('read').length} of ${after.filter(c => c.tool === 'read').length}`,
    'other calls failed after the kill': `${failed('write').length} of ${after.filter(c => c.tool === 'write').length} (${JSON.stringify(codes)})`,
    'calls in flight at the kill (all replicas)': inFlight.length,
    'calls without an answer': calls.filter(c => c.code === 'NO_ANSWER').length,
    'victim out after': lastVictimError === 0 ? 'no call failed' : fmt(lastVictimError - killedAt),
    'victim back in after restart': firstBack === undefined ? 'not within the run' : fmt(firstBack - restartedAt),
    'p99 all calls': fmt(quantile(calls.map(c => c.ms), 0.99)),
    _t0: t0
  }
}

/**
 * A replica that flaps: after FLAP_MS of warm-up r2 is down for FLAP_MS and up for FLAP_MS, FLAP_CYCLES times, under
 * read (readOnlyHint) and write calls alternately. `process`: killed with SIGKILL, started again on its port.
 * `answers`: running, but every tools/call answered at once with HTTP 500 while down (fault-replica.mjs { fail }).
 * A call belongs to the phase it ended in (those in flight at a kill fail in the down phase), and to the replica
 * whose answer or error it got (the gateway's errors name the upstream). The circuit breakers are the defaults.
 */
async function flapping (mode) {
  const replicas = [await replica('r0'), await replica('r1'), await replica('r2')]
  const gw = await gateway(replicas)
  const port = replicas[2].port
  const before = await circuitTransitions(gw.base)
  const seconds = (2 * FLAP_CYCLES + 1) * FLAP_MS / 1000
  const t0 = performance.now()
  const phases = [{ down: false, from: t0 }]
  const calls = await load(gw.base, seconds, CONCURRENCY, ['read', 'write'], async () => {
    for (let i = 0; i < FLAP_CYCLES; i++) {
      await sleep(Math.max(0, t0 + (2 * i + 1) * FLAP_MS - performance.now()))
      phases.push({ down: true, from: performance.now() })
      if (mode === 'process') replicas[2].child.process.kill('SIGKILL')
      else replicas[2].child.process.send({ fail: true })
      await sleep(Math.max(0, t0 + (2 * i + 2) * FLAP_MS - performance.now()))
      if (mode === 'process') replicas[2] = await replica('r2', port)
      else replicas[2].child.process.send({ fail: false })
      phases.push({ down: false, from: performance.now() })
    }
  })
  const after = await circuitTransitions(gw.base)
  await stopAll()
  const phaseOf = (c) => phases.findLast(p => p.from <= c.at + c.ms)
  const from = (c) => c.replica ?? /\bupstream (r\d+)\b/i.exec(c.message ?? '')?.[1]
  const share = (list) => `${(list.filter(c => from(c) === 'r2').length / Math.max(1, list.length) * 100).toFixed(1)}% of ${list.length}`
  const failed = (tool) => calls.filter(c => c.tool === tool && c.status !== 200)
  const codes = (list) => {
    const counted = {}
    for (const c of list) counted[c.code ?? c.status] = (counted[c.code ?? c.status] ?? 0) + 1
    return JSON.stringify(counted)
  }
  const figures = {
    calls: calls.length,
    'read-only calls failed': `${failed('read').length} of ${calls.filter(c => c.tool === 'read').length} (${codes(failed('read'))})`,
    'other calls failed': `${failed('write').length} of ${calls.filter(c => c.tool === 'write').length} (${codes(failed('write'))})`,
    'calls without an answer': calls.filter(c => c.code === 'NO_ANSWER').length,
    "flapper's share while down": share(calls.filter(c => phaseOf(c).down)),
    "flapper's share while up (after a down)": share(calls.filter(c => !phaseOf(c).down && phaseOf(c) !== phases[0])),
    'circuit transitions open/half-open/closed': ['open', 'half-open', 'closed'].map(to => after[to] - before[to]).join('/'),
    'p99 all calls': fmt(quantile(calls.map(c => c.ms), 0.99))
  }
  // Phase by phase: the flapper's share, the failures, and how long it took the flapper out or back in.
  phases.forEach((phase, i) => {
    const end = phases[i + 1]?.from ?? Infinity
    const list = calls.filter(c => phaseOf(c) === phase)
    const mine = list.filter(c => from(c) === 'r2')
    const lastFailure = Math.max(0, ...mine.filter(c => c.status !== 200).map(c => c.at + c.ms))
    const firstAnswer = mine.filter(c => c.status === 200).map(c => c.at + c.ms).sort((a, b) => a - b)[0]
    const when = i === 0
      ? 'warm-up'
      : !phase.down
          ? firstAnswer === undefined ? 'r2 not back' : `r2 back after ${fmt(firstAnswer - phase.from)}`
          : lastFailure === 0 ? 'no r2 failure' : `r2 out after ${fmt(lastFailure - phase.from)}`
    const span = `${((phase.from - t0) / 1000).toFixed(1)}–${Number.isFinite(end) ? ((end - t0) / 1000).toFixed(1) : seconds.toFixed(1)} s`
    figures[`  ${phase.down ? 'down' : 'up'} ${span}`] = `r2 ${share(list)}, ${list.filter(c => c.status !== 200).length} failed, ${when}`
  })
  return figures
}

/** The gateway's circuit_transitions_total by its `to` label (open, half-open, closed), scraped from GET /metrics. */
async function circuitTransitions (base) {
  const res = await request(base + '/metrics', { dispatcher: agent, signal: AbortSignal.timeout(CALL_DEADLINE) })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${text.slice(0, 200)}`)
  const counts = { open: 0, 'half-open': 0, closed: 0 }
  for (const [, labels, value] of text.matchAll(/^mcp_gateway_circuit_transitions_total\{([^}]*)\} (\S+)$/gm)) {
    const to = /\bto="([^"]*)"/.exec(labels)?.[1]
    if (to !== undefined) counts[to] = (counts[to] ?? 0) + Number(value)
  }
  return counts
}

async function slowReplica (strategy) {
  const replicas = [await replica('r0'), await replica('r1'), await replica('r2')]
  const gw = await gateway(replicas, strategy === undefined ? {} : { balancer: { strategy } })
  replicas[2].child.process.send({ delay: 500 })
  const t0 = performance.now()
  const calls = await load(gw.base, 10, CONCURRENCY, ['read'])
  const late = calls.filter(c => c.at >= t0 + 5000)
  const share = late.filter(c => c.replica === 'r2').length / Math.max(1, late.length)
  await stopAll()
  return { strategy: strategy ?? 'peak-ewma (default)', 'slow replica share after 5 s': `${(share * 100).toFixed(1)}%`, 'calls/s': (calls.length / 10).toFixed(0), p99: fmt(quantile(late.map(c => c.ms), 0.99)) }
}

async function overload () {
  // Capacity: 3 replicas × 4 calls at once / 50 ms = 240 calls/s; the callers ask for twice that.
  const replicas = [await replica('r0'), await replica('r1'), await replica('r2')]
  const gw = await gateway(replicas, { servers: { maxConcurrent: 4, queue: { size: 4, timeoutMs: 200 } } })
  const calls = await load(gw.base, 8, 48, ['read'])
  const admitted = calls.filter(c => c.status === 200)
  const refused = calls.filter(c => c.status === 503)
  const other = calls.filter(c => c.status !== 200 && c.status !== 503)
  await stopAll()
  return {
    'calls/s admitted': (admitted.length / 8).toFixed(0),
    'refused (503 busy) per second': `${(refused.length / 8).toFixed(0)} (the callers ask again at once: a closed loop)`,
    'refusal latency p50/p99': `${fmt(quantile(refused.map(c => c.ms), 0.5))}/${fmt(quantile(refused.map(c => c.ms), 0.99))}`,
    'admitted p50/p99': `${fmt(quantile(admitted.map(c => c.ms), 0.5))}/${fmt(quantile(admitted.map(c => c.ms), 0.99))}`,
    'other failures': other.length
  }
}

async function stopAll () {
  await Promise.allSettled(children.splice(0).map(child => child.stop()))
}

function print (title, figures) {
  console.log(`\n${title}`)
  for (const [key, value] of Object.entries(figures)) if (!key.startsWith('_')) console.log(`  ${key.padEnd(42)} ${value}`)
}

async function main () {
  console.log(`bench:faults: ${CONCURRENCY} callers, replicas answer in 50 ms, node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map(l => l.toFixed(2)).join(' ')}`)
  print('kill -9 one of three replicas under load (at 3 s), started again on its port (at 6 s), 10 s:', await killAndRestart())
  await stopAll()
  print('one replica 10× slower (500 ms), 10 s:', await slowReplica(undefined))
  print('', await slowReplica('round-robin'))
  print('flapping replica, process killed (SIGKILL) 2 s / started again 2 s, ×3, read + write, 14 s:', await flapping('process'))
  print('flapping replica, running but every tools/call HTTP 500 2 s / answering 2 s, ×3, read + write, 14 s:', await flapping('answers'))
  print('twice the capacity (48 callers, maxConcurrent 4 + queue 4 / 200 ms per replica), 8 s:', await overload())
  return 0
}

try {
  process.exitCode = await main()
} catch (err) {
  console.error(`bench:faults failed: ${err.message}`)
  process.exitCode = 1
} finally {
  await stopAll()
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  await agent.close()
}
