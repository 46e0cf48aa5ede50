// `npm run bench:scale`: the gateway at the size it is designed for. For each N (SCALE_N, default 100,500,1000) it
// starts fresh fixtures serving N Streamable HTTP upstreams (scale-upstream.mjs; a tenth of them on a second
// process, so they can be taken down together) and a fresh gateway with N servers in its config, then measures:
// start-up to a full catalog; fds, RSS and the sessions/GET streams it holds upstream, idle; tools/list; tools/call
// through it versus direct; 36 client sessions spread over many upstreams, and what is given back when they leave;
// /metrics; and idle CPU with 10% of the upstreams down. It prints a report per N, a summary and the targets at
// N=1000, and writes the whole to test/bench/results/scale-<date>.json. Every process it starts is its own child,
// stopped by PID however the run ends. The targets never fail the run; it exits 1 only for functional failures (a
// child that died, a wrong answer, a timeout waiting for readiness).
// Settings: SCALE_N, SCALE_DURATION (s per load, default 5), SCALE_CONNECTIONS (default 32), SCALE_STATEFUL (share
// of client sessions declaring sampling and roots, default 0.25), SCALE_GATEWAY_CLI (another build's dist/src/cli.js).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join, relative, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Agent } from 'undici'
import { Child, freePort } from './children.mjs'
import { fdLimit, openFds, snapshot } from './proc.mjs'
import { endSession, openSession, runClients, serverId } from './scale-clients.mjs'
import { callLoad, callTarget, listTimings, scrapes, verifyTargets, withScrapes, WrongAnswer } from './scale-load.mjs'
import { formatRun, formatSummary, formatTargets } from './scale-report.mjs'

const file = (path) => fileURLToPath(new URL(path, import.meta.url))
const UPSTREAM = file('./scale-upstream.mjs')
const RESULTS_DIR = file('./results/')
const TOOLS_PER_SERVER = 10
/** Upstream i is in the down share when i % DOWN_EVERY is 0: 10%, spread over the whole range. */
const DOWN_EVERY = 10
/** How many upstreams the tools/call loads cycle over (the same ones through the gateway and direct). */
const CALL_SPREAD = 100
const CLIENT_SESSIONS = 36
const CLIENT_CONCURRENCY = 64
const CALL_TIMEOUT = 30_000
const CLIENT_PHASE_TIMEOUT = 240_000
const READY_TIMEOUT = 30_000
const CATALOG_TIMEOUT = 120_000
const IDLE_WAIT = 10_000
const RELEASE_POLL = 5_000
const RELEASE_TIMEOUT = 120_000
const DOWN_TIMEOUT = 60_000
const CPU_WINDOW = 30_000
const SCRAPE_EVERY = 1_000
const SAMPLE_EVERY = 500

/** A failure that ends the measurement of this N: a child died, or never became ready. */
class Fatal extends Error {}

const children = []
const configDirs = []
let cleaning

async function main () {
  const settings = {
    ns: sizes(process.env.SCALE_N ?? '100,500,1000'),
    duration: positiveInt('SCALE_DURATION', 5),
    warmup: 2,
    connections: positiveInt('SCALE_CONNECTIONS', 32),
    statefulShare: share('SCALE_STATEFUL', 0.25),
    gatewayCli: process.env.SCALE_GATEWAY_CLI ? resolve(process.env.SCALE_GATEWAY_CLI) : file('../../dist/src/cli.js')
  }
  const loadBefore = os.loadavg()
  console.log(`bench:scale: N=${settings.ns.join(',')}, ${settings.duration} s loads, ${settings.connections} connections, ` +
    `${CLIENT_SESSIONS} client sessions (${settings.statefulShare * 100}% stateful), gateway ${relative(process.cwd(), settings.gatewayCli)}, ` +
    `node ${process.version}, ${os.cpus().length} CPUs, load ${loadBefore.map(l => l.toFixed(2)).join(' ')}`)
  const runs = []
  for (const n of settings.ns) {
    const run = await measureScale(n, settings)
    runs.push(run)
    console.log('\n' + formatRun(run))
  }
  console.log('\n' + formatSummary(runs))
  console.log('\n' + formatTargets(runs))
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavg: { before: loadBefore, after: os.loadavg() },
    settings,
    runs
  }
  await mkdir(RESULTS_DIR, { recursive: true })
  const out = join(RESULTS_DIR, `scale-${report.date.replace(/[:.]/g, '-')}.json`)
  await writeFile(out, JSON.stringify(report, null, 2) + '\n')
  console.log(`\nresults: ${relative(process.cwd(), out)}`)
  const failures = runs.flatMap(run => run.functional.map(f => `N=${run.n}: ${f}`))
  for (const failure of failures) console.error(`FAILED ${failure}`)
  return failures.length === 0 ? 0 : 1
}

/** One N, from fresh processes to their end. Never throws: what went wrong is in the run's `functional`/`errors`. */
async function measureScale (n, settings) {
  const run = { n, down: Math.floor(n / DOWN_EVERY), expectedTools: n * TOOLS_PER_SERVER, functional: [], errors: [] }
  const mine = []
  const stopped = new Set()
  const alive = () => {
    for (const child of mine) if (child.exited && !stopped.has(child)) throw new Fatal(`died during the run: ${child.describe()}`)
  }
  /** Runs one measurement; a failure of the gateway under load is reported and the next phase still runs. */
  const phase = async (name, measurement, ctx) => {
    console.log(`  N=${n}: ${name}…`)
    try {
      await measurement(ctx)
    } catch (err) {
      if (err instanceof Fatal) throw err
      if (err instanceof WrongAnswer) run.functional.push(`${name}: ${err.message}`)
      else run.errors.push(`${name}: ${err.message}`)
    }
    alive()
  }
  let sampler, gateway
  try {
    const fixture = track(mine, new Child(`fixture (N=${n})`, UPSTREAM, []))
    const downFixture = track(mine, new Child(`down-share fixture (N=${n})`, UPSTREAM, []))
    const [port, downPort] = await Promise.all([fixture, downFixture].map(async (child) => (await child.firstMessage(READY_TIMEOUT)).port))
    const config = await writeConfig(n, (i) => `http://127.0.0.1:${i % DOWN_EVERY === 0 ? downPort : port}/u/${i}/mcp`)
    const gatewayPort = await freePort()
    const started = performance.now()
    gateway = track(mine, new Child(`gateway (N=${n})`, settings.gatewayCli,
      ['--config', config, '--port', String(gatewayPort), '--host', '127.0.0.1'], { preload: true }))
    sampler = new Sampler(gateway.pid)
    run.fdLimit = fdLimit(gateway.pid)
    const base = `http://127.0.0.1:${gatewayPort}`
    const upUpstreams = range(n).filter(i => i % DOWN_EVERY !== 0)
    const ctx = {
      run,
      settings,
      gateway,
      sampler,
      alive,
      base,
      mcp: base + '/mcp',
      origin: `http://127.0.0.1:${port}`,
      spread: evenly(upUpstreams, Math.min(CALL_SPREAD, upUpstreams.length)),
      measure: () => measure(gateway.pid, [fixture, downFixture]),
      takeDown: async () => {
        stopped.add(downFixture)
        await downFixture.stop()
      }
    }

    console.log(`  N=${n}: waiting for the catalog…`)
    run.catalog = await waitForCatalog(base, gateway, run.expectedTools, started)
    if (!run.catalog.full) run.functional.push(`the catalog held ${run.catalog.tools} of ${run.expectedTools} tools after ${CATALOG_TIMEOUT / 1000} s`)
    await phase('idle', idlePhase, ctx)
    await phase('tools/list', listPhase, ctx)
    await phase('tools/call, direct and through the gateway', callPhase, ctx)
    await phase(`${CLIENT_SESSIONS} client sessions`, clientPhase, ctx)
    await phase('client sessions ended', releasePhase, ctx)
    await phase('/metrics', metricsPhase, ctx)
    await phase(`${run.down} upstreams down`, downPhase, ctx)
  } catch (err) {
    run.functional.push(err.message)
  } finally {
    sampler?.stop()
    run.peak = sampler?.peak
    run.emfileLogged = gateway?.describe().includes('EMFILE') ?? false
    for (const child of mine) {
      if (child.exited && !stopped.has(child) && !run.functional.some(f => f.includes(child.name))) run.functional.push(`died during the run: ${child.describe()}`)
    }
    const stops = await Promise.allSettled(mine.map(child => child.stop()))
    for (const stop of stops) if (stop.status === 'rejected') run.functional.push(stop.reason.message)
  }
  return run
}

/** Right after the catalog is full and again after IDLE_WAIT with nothing to do. */
async function idlePhase ({ run, measure }) {
  const atCatalog = await measure()
  await sleep(IDLE_WAIT)
  const after = await measure()
  run.idle = { atCatalog, after, cpuPercent: cpuPercent(atCatalog, after) }
}

async function listPhase ({ run, mcp }) {
  const headers = await openSession(mcp)
  try {
    run.list = await listTimings(mcp, headers, run.catalog.tools)
  } finally {
    await endSession(mcp, headers)
  }
}

/** The same echo calls over the same upstreams, straight to their sessions on the fixture, then through the gateway. */
async function callPhase ({ run, settings, base, origin, spread, sampler }) {
  sampler.mark()
  run.calls = { upstreams: spread.length }
  const direct = await Promise.all(spread.map(async (i) => callTarget(`/u/${i}/mcp`, await openSession(`${origin}/u/${i}/mcp`), 'echo', serverId(i))))
  run.calls.direct = await warmedLoad(run, 'tools/call direct', origin, direct, settings)
  await Promise.all(direct.map(t => endSession(origin + t.path, t.headers)))
  run.calls.gateway = await gatewayLoad(run, 'tools/call gateway', base, spread, settings)
  run.calls.ratio = run.calls.gateway.callsPerSecond / run.calls.direct.callsPerSecond
  run.calls.peak = sampler.mark()
}

async function clientPhase (ctx) {
  const { run, settings, sampler, mcp, measure } = ctx
  // Their own connections, closed when they leave: the bench's idle keep-alive sockets are not the gateway's doing.
  ctx.dispatcher = new Agent()
  sampler.mark()
  const clients = await runClients({
    url: mcp,
    n: run.n,
    sessions: CLIENT_SESSIONS,
    statefulShare: settings.statefulShare,
    concurrency: CLIENT_CONCURRENCY,
    callTimeout: CALL_TIMEOUT,
    deadline: performance.now() + CLIENT_PHASE_TIMEOUT,
    dispatcher: ctx.dispatcher
  })
  ctx.sessions = clients.headers
  run.clients = { ...clients.tally, peak: sampler.mark(), after: await measure() }
  if (clients.tally.wrong > 0) run.functional.push(`client sessions: ${clients.tally.wrong} wrong answers: ${clients.tally.wrongAnswers.join('; ')}`)
}

/** The clients end their sessions; how long until the gateway is back to its idle fds (+10%, at least +50)? */
async function releasePhase ({ run, sampler, gateway, alive, mcp, measure, sessions = [], dispatcher }) {
  sampler.mark()
  const statuses = await Promise.all(sessions.map(headers => endSession(mcp, headers, { dispatcher })))
  await dispatcher?.close()
  if (run.idle === undefined) throw new Error('no idle figure to compare with')
  const threshold = run.idle.after.fds + Math.max(50, Math.round(run.idle.after.fds * 0.1))
  const since = performance.now()
  let backMs = null
  for (let poll = 0; poll * RELEASE_POLL <= RELEASE_TIMEOUT; poll++) {
    await sleep(Math.max(0, since + poll * RELEASE_POLL - performance.now()))
    alive()
    if (openFds(gateway.pid) <= threshold) {
      backMs = performance.now() - since
      break
    }
  }
  run.release = { deleted: tallyOf(statuses), threshold, backMs, peak: sampler.mark(), end: await measure() }
}

/** Scrapes alone, then a call load without and with a scrape every SCRAPE_EVERY beside it. */
async function metricsPhase ({ run, settings, base, spread, sampler }) {
  sampler.mark()
  const scrape = await scrapes(base + '/metrics')
  run.metrics = await gatewayLoad(run, 'tools/call beside /metrics', base, spread, settings, async (load) => {
    const without = await load()
    const during = await withScrapes(base + '/metrics', SCRAPE_EVERY, load)
    return { scrape, without, with: { ...during.load, scrapes: during.scrapes, scrapeMax: during.scrapeMax, scrapeFailures: during.scrapeFailures } }
  })
  run.metrics.peak = sampler.mark()
}

/** The down share's fixture is stopped (connection refused from then on); the gateway's CPU while it idles so. */
async function downPhase ({ run, gateway, base, measure, takeDown, sampler }) {
  sampler.mark()
  await takeDown()
  run.downed = { ms: await waitForDown(base, gateway, run.down) }
  const before = await measure()
  await sleep(CPU_WINDOW)
  const after = await measure()
  Object.assign(run.downed, { cpuPercent: cpuPercent(before, after), after, peak: sampler.mark() })
  if (run.downed.ms === null) throw new Error(`/health did not show ${run.down} upstreams down within ${DOWN_TIMEOUT / 1000} s`)
}

/**
 * A gateway session calling echo over `upstreams`, verified and warmed up; `measure` is handed the measured load
 * (by default it just runs it once) and what it resolves is returned.
 */
async function gatewayLoad (run, name, base, upstreams, settings, measure) {
  const headers = await openSession(base + '/mcp')
  try {
    const targets = upstreams.map(i => callTarget('/mcp', headers, `${serverId(i)}__echo`, serverId(i)))
    return await warmedLoad(run, name, base, targets, settings, measure)
  } finally {
    await endSession(base + '/mcp', headers)
  }
}

/** Every target called once (verified), a warm-up load, then the measured one; wrong answers are functional failures. */
async function warmedLoad (run, name, origin, targets, settings, measure = (load) => load()) {
  const verified = await verifyTargets(origin, targets)
  if (verified.wrong > 0) run.functional.push(`${name}: ${verified.wrong} wrong answers: ${Object.keys(verified.failures).join('; ')}`)
  await callLoad(origin, targets, { duration: settings.warmup, connections: settings.connections })
  const load = async () => {
    const result = await callLoad(origin, targets, { duration: settings.duration, connections: settings.connections })
    if (result.wrong > 0) run.functional.push(`${name}: ${result.wrong} wrong answers under load`)
    return result
  }
  return { ...await measure(load), verifyFailed: verified.failed, verifyFailures: verified.failures }
}

/** Polls /health from the gateway's start until its catalog holds every tool; a gateway that never listens is fatal. */
async function waitForCatalog (base, gateway, expected, started) {
  let health
  while (performance.now() - started < CATALOG_TIMEOUT) {
    if (gateway.exited) throw new Fatal(`the gateway exited before its catalog was full: ${gateway.describe()}`)
    health = await getHealth(base).catch(() => health)
    if (health === undefined && performance.now() - started > READY_TIMEOUT) {
      throw new Fatal(`the gateway did not answer /health within ${READY_TIMEOUT / 1000} s: ${gateway.describe()}`)
    }
    if (health?.tools === expected) return { ms: performance.now() - started, tools: expected, full: true }
    await sleep(100)
  }
  return { ms: null, tools: health?.tools ?? 0, full: false }
}

/** Resolves how long until /health counted `down` upstreams down, from now, or null if it did not within the bound. */
async function waitForDown (base, gateway, down) {
  const since = performance.now()
  while (performance.now() - since < DOWN_TIMEOUT) {
    if (gateway.exited) throw new Fatal(`the gateway exited: ${gateway.describe()}`)
    const health = await getHealth(base).catch(() => undefined)
    if (health?.servers?.down >= down) return performance.now() - since
    await sleep(250)
  }
  return null
}

async function getHealth (base) {
  const res = await fetch(base + '/health', { signal: AbortSignal.timeout(5000) })
  return res.json()
}

/** The gateway's fds, RSS and CPU time, and what the fixtures hold for it (summed over the ones still running). */
async function measure (pid, fixtures) {
  const proc = snapshot(pid)
  const stats = (await Promise.all(fixtures.map(fixtureStats))).filter(Boolean)
  const sum = (key) => stats.reduce((total, s) => total + s[key], 0)
  return {
    at: performance.now(),
    ...proc,
    sessions: sum('sessions'),
    streams: sum('streams'),
    connections: sum('connections'),
    sessionsOpened: sum('sessionsOpened'),
    acceptErrors: sum('acceptErrors')
  }
}

let statsSeq = 0
/** Asks a fixture over IPC (which works when the loopback is out of fds); null if it is gone or silent. */
function fixtureStats (child) {
  if (child.exited) return Promise.resolve(null)
  const seq = ++statsSeq
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), 5000)
    function listen (message) {
      if (message?.type === 'stats' && message.seq === seq) done(message.stats)
    }
    function done (stats) {
      clearTimeout(timer)
      child.process.off('message', listen)
      resolve(stats)
    }
    child.process.on('message', listen)
    try {
      child.process.send({ type: 'stats', seq })
    } catch {
      done(null)
    }
  })
}

/** Peak fds and RSS of the gateway, sampled twice a second: over the whole run and since the last mark(). */
class Sampler {
  constructor (pid) {
    this.pid = pid
    this.peak = { fds: 0, rss: 0 }
    this.phase = { fds: 0, rss: 0 }
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY)
  }

  sample () {
    const { fds, rss } = snapshot(this.pid)
    for (const peak of [this.peak, this.phase]) {
      peak.fds = Math.max(peak.fds, fds ?? 0)
      peak.rss = Math.max(peak.rss, rss ?? 0)
    }
  }

  mark () {
    this.sample()
    const phase = this.phase
    this.phase = { fds: 0, rss: 0 }
    return phase
  }

  stop () {
    clearInterval(this.timer)
  }
}

async function writeConfig (n, urlOf) {
  const dir = await mkdtemp(join(os.tmpdir(), 'mcp-gateway-scale-'))
  configDirs.push(dir)
  const config = join(dir, 'gateway.json')
  await writeFile(config, JSON.stringify({
    logLevel: 'warn',
    metrics: { defaultMetrics: false },
    shutdownTimeout: 2000,
    servers: range(n).map(i => ({ id: serverId(i), url: urlOf(i) }))
  }))
  return config
}

function track (mine, child) {
  mine.push(child)
  children.push(child)
  return child
}

function cpuPercent (before, after) {
  if (before.cpu == null || after.cpu == null) return null
  return (after.cpu - before.cpu) / ((after.at - before.at) / 1000) * 100
}

function tallyOf (values) {
  const counts = {}
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1
  return counts
}

function range (n) {
  return Array.from({ length: n }, (_, i) => i + 1)
}

/** `count` of `items`, spread evenly over the whole list. */
function evenly (items, count) {
  return Array.from({ length: count }, (_, j) => items[Math.floor(j * items.length / count)])
}

function sizes (raw) {
  const ns = raw.split(',').map(s => Number(s.trim()))
  if (ns.length === 0 || ns.some(n => !Number.isInteger(n) || n < 10 || n > 9999)) {
    throw new Error(`SCALE_N must be a comma-separated list of integers 10…9999, got ${JSON.stringify(raw)}`)
  }
  return ns
}

function positiveInt (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`)
  return value
}

function share (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!(value >= 0 && value <= 1)) throw new Error(`${name} must be a number from 0 to 1, got ${JSON.stringify(raw)}`)
  return value
}

function cleanUp () {
  cleaning ??= (async () => {
    const stops = await Promise.allSettled(children.map(child => child.stop()))
    for (const stop of stops) if (stop.status === 'rejected') console.error(stop.reason.message)
    await Promise.all(configDirs.map(dir => rm(dir, { recursive: true, force: true })))
  })()
  return cleaning
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`\nbench:scale: ${signal}, stopping`)
    cleanUp().finally(() => process.exit(130))
  })
}

try {
  process.exitCode = await main()
} catch (err) {
  console.error(`bench:scale failed: ${err.message}`)
  process.exitCode = 1
} finally {
  await cleanUp()
}
