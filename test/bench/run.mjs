// `npm run bench`: tools/call throughput and latency through the gateway, next to the same call sent to its
// upstream directly and through a bare Fastify + undici forwarding proxy — the three measured one after the other on
// this machine, in one run, so their ratios are comparable. Every process it starts is its own child, stopped by PID
// however the run ends. It exits 1 only when something failed functionally (a wrong answer, errors or non-2xx
// answers under load, a child that died); the numbers never fail it.
// Settings: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3), BENCH_CONNECTIONS (default 32),
// BENCH_RATE_LIMIT (`local` or `redis`: the gateway counts every call against perIp and perPrincipal limits too high
// to refuse any, in this process or in a redis-server the bench starts — what counting costs per call),
// BENCH_TRACING=1 (tracing on, every span exported over OTLP/HTTP to a sink the bench starts — what tracing costs),
// BENCH_CACHE=1 (the tool's results cached: after the first call every call is a memory hit).
import autocannon from 'autocannon'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Child, freePort } from './children.mjs'
import { callBody, checkCall, openSession } from './session.mjs'
import { formatTable, summarize } from './table.mjs'

const file = (path) => fileURLToPath(new URL(path, import.meta.url))
const GATEWAY_CLI = file('../../dist/src/cli.js')
const UPSTREAM = file('./upstream.mjs')
const BARE_PROXY = file('./bare-proxy.mjs')
const REDIS = file('./redis.mjs')
const OTLP_SINK = file('./otlp-sink.mjs')
const RESULTS_DIR = file('./results/')
const READY_TIMEOUT = 20_000

const children = []
let configDir
let cleaning

async function main () {
  const settings = {
    duration: positiveInt('BENCH_DURATION', 10),
    warmup: positiveInt('BENCH_WARMUP', 3),
    connections: positiveInt('BENCH_CONNECTIONS', 32),
    rateLimit: rateLimitMode(),
    tracing: process.env.BENCH_TRACING === '1',
    cache: process.env.BENCH_CACHE === '1'
  }
  const loadBefore = os.loadavg()

  const upstream = start('upstream', UPSTREAM, [])
  const upstreamUrl = `http://127.0.0.1:${(await upstream.firstMessage(READY_TIMEOUT)).port}/mcp`
  const bare = start('bare proxy', BARE_PROXY, [upstreamUrl])
  const redisUrl = settings.rateLimit === 'redis'
    ? `redis://127.0.0.1:${(await start('redis', REDIS, []).firstMessage(READY_TIMEOUT)).port}`
    : undefined
  const sinkUrl = settings.tracing ? `http://127.0.0.1:${(await start('otlp sink', OTLP_SINK, []).firstMessage(READY_TIMEOUT)).port}` : undefined
  const gatewayUrl = await startGateway(upstreamUrl, settings, redisUrl, sinkUrl)
  const bareUrl = `http://127.0.0.1:${(await bare.firstMessage(READY_TIMEOUT)).port}/mcp`

  const targets = [
    { name: 'direct', url: upstreamUrl, tool: 'echo' },
    { name: 'bare proxy', url: bareUrl, tool: 'echo' },
    { name: 'gateway', url: gatewayUrl, tool: 'bench__echo' }
  ]
  for (const target of targets) {
    target.headers = await openSession(target.name, target.url)
    target.body = callBody(target.tool)
    target.expected = await checkCall(target.name, target.url, target.headers, target.body)
  }

  console.log(`bench: ${settings.warmup} s warm-up + ${settings.duration} s per target, ${settings.connections} connections, ` +
    (settings.rateLimit === 'none' ? '' : `rate limits counted ${settings.rateLimit === 'redis' ? 'in Redis' : 'locally'}, `) +
    (settings.tracing ? 'tracing on (OTLP to a sink), ' : '') + (settings.cache ? 'result cache on (hits), ' : '') +
    `node ${process.version}, ${os.cpus().length} CPUs, load ${loadBefore.map(l => l.toFixed(2)).join(' ')}`)
  const rows = []
  for (const target of targets) {
    process.stdout.write(`  ${target.name}…`)
    await load(target, settings.warmup, settings.connections)
    const row = summarize(target.name, target.url, await load(target, settings.duration, settings.connections))
    rows.push(row)
    console.log(` ${row.callsPerSecond.toFixed(0)} calls/s`)
  }
  const direct = rows[0].callsPerSecond
  for (const row of rows) row.ratio = direct > 0 ? row.callsPerSecond / direct : 0

  const failures = []
  for (const row of rows) {
    if (row.errors + row.non2xx + row.mismatches > 0) {
      failures.push(`${row.target}: ${row.errors} errors (${row.timeouts} timeouts), ${row.non2xx} non-2xx, ` +
        `${row.mismatches} answers unlike the verified one; status codes ${JSON.stringify(row.statusCodes)}`)
    }
  }
  for (const target of targets) {
    try {
      await checkCall(target.name, target.url, target.headers, target.body)
    } catch (err) {
      failures.push(`after the load, ${err.message}`)
    }
  }
  for (const child of children) if (child.exited) failures.push(`died during the run: ${child.describe()}`)

  console.log('\n' + formatTable(rows) + '\n')
  console.log(`gateway/direct ${rows[2].ratio.toFixed(2)}, bare proxy/direct ${rows[1].ratio.toFixed(2)}, ` +
    `gateway/bare proxy ${(rows[2].callsPerSecond / rows[1].callsPerSecond).toFixed(2)}`)
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavg: { before: loadBefore, after: os.loadavg() },
    settings,
    results: rows,
    failures
  }
  await mkdir(RESULTS_DIR, { recursive: true })
  const out = join(RESULTS_DIR, `bench-${report.date.replace(/[:.]/g, '-')}.json`)
  await writeFile(out, JSON.stringify(report, null, 2) + '\n')
  console.log(`results: ${relative(process.cwd(), out)}`)
  for (const failure of failures) console.error(`FAILED ${failure}`)
  return failures.length === 0 ? 0 : 1
}

function start (name, path, args, options) {
  const child = new Child(name, path, args, options)
  children.push(child)
  return child
}

/**
 * The built CLI with a generated config: one Streamable HTTP upstream, id `bench`; rate limits per BENCH_RATE_LIMIT,
 * tracing per BENCH_TRACING (to `sinkUrl`), the result cache per BENCH_CACHE.
 */
async function startGateway (upstreamUrl, { rateLimit, cache }, redisUrl, sinkUrl) {
  configDir = await mkdtemp(join(os.tmpdir(), 'mcp-gateway-bench-'))
  const config = join(configDir, 'gateway.json')
  await writeFile(config, JSON.stringify({
    logLevel: 'warn',
    metrics: { defaultMetrics: false },
    shutdownTimeout: 2000,
    servers: [{ id: 'bench', url: upstreamUrl }],
    ...(sinkUrl === undefined ? {} : { tracing: { enabled: true } }),
    ...(cache ? { cache: { tools: [{ pattern: 'bench__*', ttlMs: 600_000, force: true }] } } : {}),
    ...(rateLimit === 'none'
      ? {}
      : {
          rateLimit: {
            perIp: { max: 1_000_000_000, windowMs: 1000 },
            perPrincipal: { max: 1_000_000_000, windowMs: 1000 },
            ...(redisUrl === undefined ? {} : { redis: { url: redisUrl } })
          }
        })
  }, null, 2))
  const port = await freePort()
  // BENCH_GATEWAY_NODE_ARGS: flags for the gateway's node alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const env = sinkUrl === undefined ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_SERVICE_NAME: 'bench-gateway' }
  const gateway = start('gateway', GATEWAY_CLI, ['--config', config, '--port', String(port), '--host', '127.0.0.1'], { preload: true, nodeArgs, env })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + READY_TIMEOUT
  let last = 'no answer'
  while (Date.now() < deadline) {
    if (gateway.exited) throw new Error(`the gateway exited before it was ready: ${gateway.describe()}`)
    try {
      const res = await fetch(base + '/health', { signal: AbortSignal.timeout(2000) })
      const health = await res.json()
      if (res.status === 200 && health.tools === 1) return base + '/mcp'
      last = `${res.status} ${JSON.stringify(health)}`
    } catch (err) {
      last = err.cause?.message ?? err.message
    }
    await sleep(100)
  }
  throw new Error(`the gateway was not ready within ${READY_TIMEOUT} ms (last /health: ${last}): ${gateway.describe()}`)
}

function load (target, duration, connections) {
  return autocannon({
    url: target.url,
    method: 'POST',
    headers: target.headers,
    body: target.body,
    expectBody: target.expected,
    connections,
    duration
  })
}

function rateLimitMode () {
  const mode = process.env.BENCH_RATE_LIMIT ?? ''
  if (mode === '') return 'none'
  if (mode !== 'local' && mode !== 'redis') throw new Error(`BENCH_RATE_LIMIT must be local or redis, got ${JSON.stringify(mode)}`)
  return mode
}

function positiveInt (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`)
  return value
}

function cleanUp () {
  cleaning ??= (async () => {
    const stops = await Promise.allSettled(children.map(child => child.stop()))
    for (const stop of stops) if (stop.status === 'rejected') console.error(stop.reason.message)
    if (configDir !== undefined) await rm(configDir, { recursive: true, force: true })
  })()
  return cleaning
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`\nbench: ${signal}, stopping`)
    cleanUp().finally(() => process.exit(130))
  })
}

try {
  process.exitCode = await main()
} catch (err) {
  console.error(`bench failed: ${err.message}`)
  process.exitCode = 1
} finally {
  await cleanUp()
}
