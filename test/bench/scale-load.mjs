// Scale-bench loads: tools/call with autocannon spread over many upstreams (through the gateway, or straight to each
// upstream's own session on the fixture), tools/list pages and whole-catalog listings, and /metrics scrapes. Every
// answer is checked; what fails is counted and returned, so the caller decides what is a failure of the run.
import autocannon from 'autocannon'
import { group, rpc } from './scale-clients.mjs'

/** An answer that came but is not what was asked for: a functional failure of the gateway, not a slow one. */
export class WrongAnswer extends Error {}

/**
 * A call target: where a request goes (`path`, the headers of its session) and the tool it names; `text` is what
 * its echo must answer. The JSON-RPC id of each request encodes its target (id % targets.length), so an answer can
 * be checked against what was asked without any per-connection state.
 */
export function callTarget (path, headers, tool, text) {
  return { path, headers, tool, text }
}

function call (target, id) {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: target.tool, arguments: { text: target.text } } }
}

/**
 * One call to every target before the load, so the gateway opens what it opens for a new upstream now, not during
 * the measurement. Returns how many calls failed and how many answered something else than their echo.
 */
export async function verifyTargets (origin, targets, concurrency = 16) {
  const tally = { failed: 0, wrong: 0, failures: {} }
  let next = 0
  async function worker () {
    while (next < targets.length) {
      const index = next++
      const target = targets[index]
      const reply = await rpc(origin + target.path, target.headers, call(target, index))
      if (reply.failure !== undefined) {
        tally.failed++
        group(tally.failures, reply.failure)
      } else if (reply.answer.result?.content?.[0]?.text !== target.text) {
        tally.wrong++
        group(tally.failures, `wrong answer: ${JSON.stringify(reply.answer).slice(0, 200)}`)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return tally
}

/** An autocannon run cycling over `targets`; returns calls/s, latency and every kind of failure, counted. */
export async function callLoad (origin, targets, { duration, connections }) {
  const tally = { ok: 0, rpcErrors: 0, wrong: 0, failures: {} }
  let sent = 0
  const result = await autocannon({
    url: origin,
    connections,
    duration,
    requests: [{
      method: 'POST',
      setupRequest (request) {
        const id = sent++
        const target = targets[id % targets.length]
        return { ...request, path: target.path, headers: target.headers, body: JSON.stringify(call(target, id)) }
      },
      onResponse (status, text) {
        let answer
        try {
          answer = JSON.parse(text)
        } catch {}
        if (status >= 300) {
          group(tally.failures, `HTTP ${status}: ${answer?.error?.message ?? text.slice(0, 200)}`)
        } else if (answer?.error !== undefined) {
          tally.rpcErrors++
          group(tally.failures, `JSON-RPC ${answer.error.code}: ${answer.error.message}`)
        } else if (typeof answer?.id !== 'number' || answer.result?.content?.[0]?.text !== targets[answer.id % targets.length].text) {
          tally.wrong++
          group(tally.failures, `wrong answer: ${text.slice(0, 200)}`)
        } else {
          tally.ok++
        }
      }
    }]
  })
  return {
    callsPerSecond: result.requests.average,
    calls: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    rpcErrors: tally.rpcErrors,
    wrong: tally.wrong,
    failed: result.errors + result.non2xx + tally.rpcErrors,
    failures: tally.failures
  }
}

/**
 * tools/list through a gateway session: the latency of the first page over `requests` requests (or `timeLimit`
 * ms, whichever ends first), and the time to walk every page with the cursors, `walks` times (the median is
 * reported). Throws when a walk does not return every tool once, or more pages than the catalog can fill.
 */
export async function listTimings (url, headers, expectedTools, { requests = 200, timeLimit = 15_000, walks = 3 } = {}) {
  const samples = []
  const end = performance.now() + timeLimit
  let pageSize = 0
  while (samples.length < requests && performance.now() < end) {
    const started = performance.now()
    const list = await rpc(url, headers, { jsonrpc: '2.0', id: samples.length + 1, method: 'tools/list' })
    if (list.failure !== undefined) throw new Error(`tools/list: ${list.failure}`)
    samples.push(performance.now() - started)
    pageSize = list.answer.result.tools.length
  }
  const walkTimes = []
  let pages = 0
  for (let w = 0; w < walks; w++) {
    const started = performance.now()
    const names = new Set()
    let cursor
    for (pages = 1; ; pages++) {
      const list = await rpc(url, headers, { jsonrpc: '2.0', id: pages, method: 'tools/list', params: cursor === undefined ? {} : { cursor } })
      if (list.failure !== undefined) throw new Error(`tools/list page ${pages}: ${list.failure}`)
      for (const tool of list.answer.result.tools) names.add(tool.name)
      cursor = list.answer.result.nextCursor
      if (cursor === undefined) break
      if (pages > expectedTools) throw new WrongAnswer(`tools/list: more than ${expectedTools} pages, the cursors do not end`)
    }
    walkTimes.push(performance.now() - started)
    if (names.size !== expectedTools) throw new WrongAnswer(`tools/list: the pages hold ${names.size} distinct tools, the catalog ${expectedTools}`)
  }
  return { pageSize, requests: samples.length, pageP50: percentile(samples, 50), pageP99: percentile(samples, 99), pages, walkMs: percentile(walkTimes, 50) }
}

/** `count` scrapes of /metrics one after the other: body size and time to the last byte. */
export async function scrapes (url, count = 10) {
  const times = []
  let bytes = 0
  for (let i = 0; i < count; i++) {
    const scrape = await scrapeOnce(url)
    times.push(scrape.ms)
    bytes = scrape.bytes
  }
  return { bytes, count, p50: percentile(times, 50), max: Math.max(...times) }
}

/** Runs `load` with a /metrics scrape every `every` ms beside it; resolves the load's result and the scrape times. */
export async function withScrapes (url, every, load) {
  const times = []
  const failures = {}
  const scrape = () => { scrapeOnce(url).then(s => times.push(s.ms), err => group(failures, err.message)) }
  scrape()
  const timer = setInterval(scrape, every)
  try {
    return { load: await load(), scrapes: times.length, scrapeMax: times.length > 0 ? Math.max(...times) : null, scrapeFailures: failures }
  } finally {
    clearInterval(timer)
  }
}

async function scrapeOnce (url) {
  const started = performance.now()
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  const text = await res.arrayBuffer()
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`)
  return { ms: performance.now() - started, bytes: text.byteLength }
}

export function percentile (values, p) {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}
