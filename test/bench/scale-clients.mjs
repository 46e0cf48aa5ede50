// Scale-bench client side: a minimal MCP Streamable HTTP client over fetch (JSON-RPC; answers as JSON or SSE), and
// the client-session phase — many sessions on the gateway, each calling `echo` on many upstreams, the way a fleet
// of agents spreads over a large catalog. A call that fails is counted and grouped by what went wrong, never
// thrown: under fd exhaustion thousands fail the same way, and the report should say how, once.
import { fetch } from 'undici'
import { PROTOCOL_VERSION } from './session.mjs'

const BASE_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const CLIENT_INFO = { name: 'scale-bench', version: '1.0.0' }
export const STATEFUL_CAPABILITIES = { sampling: {}, roots: { listChanged: true } }

/** Upstream i's id in the gateway's config: also its tool prefix (`u0042__echo`). */
export function serverId (i) {
  return 'u' + String(i).padStart(4, '0')
}

/**
 * One JSON-RPC request; resolves `{ status, answer }` where `answer` is the response with the request's id (from a
 * JSON body or from the SSE events of a streamed answer), or `{ failure }` saying why there is none. `dispatcher`:
 * an undici Agent whose connections the caller closes, so the bench's idle sockets do not count as the gateway's.
 */
export async function rpc (url, headers, message, { timeout = 10_000, dispatcher } = {}) {
  let res, text
  try {
    res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(message), signal: AbortSignal.timeout(timeout), dispatcher })
    text = await res.text()
  } catch (err) {
    return { failure: `no answer: ${err.name === 'TimeoutError' ? `timeout after ${timeout} ms` : err.cause?.message ?? err.message}` }
  }
  const type = res.headers.get('content-type') ?? ''
  const messages = type.startsWith('text/event-stream') ? sseMessages(text) : type.startsWith('application/json') ? [parse(text)] : []
  const answer = messages.find(m => m?.id === message.id && (m.result !== undefined || m.error !== undefined))
  if (res.status >= 300) return { status: res.status, headers: res.headers, failure: `HTTP ${res.status}: ${answer?.error?.message ?? text.slice(0, 200)}` }
  if (answer === undefined) return { status: res.status, headers: res.headers, failure: `HTTP ${res.status} without a response (${type || 'no content type'}): ${text.slice(0, 200)}` }
  if (answer.error !== undefined) return { status: res.status, headers: res.headers, answer, failure: `JSON-RPC ${answer.error.code}: ${answer.error.message}` }
  return { status: res.status, headers: res.headers, answer }
}

/** initialize + notifications/initialized; returns the headers of the session's later requests. */
export async function openSession (url, capabilities = {}, { timeout = 10_000, dispatcher } = {}) {
  const init = await rpc(url, BASE_HEADERS, {
    jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities, clientInfo: CLIENT_INFO }
  }, { timeout, dispatcher })
  const sessionId = init.headers?.get('mcp-session-id')
  if (init.failure !== undefined || !sessionId) throw new Error(`initialize on ${url}: ${init.failure ?? 'no mcp-session-id'}`)
  const headers = { ...BASE_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL_VERSION }
  const res = await fetch(url, {
    method: 'POST', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}', signal: AbortSignal.timeout(timeout), dispatcher
  })
  await res.body?.cancel()
  if (res.status !== 202) throw new Error(`notifications/initialized on ${url} answered ${res.status}, expected 202`)
  return headers
}

/** DELETE of the session; resolves its HTTP status, or the reason there is none. */
export async function endSession (url, headers, { timeout = 10_000, dispatcher } = {}) {
  try {
    const res = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': headers['mcp-session-id'] }, signal: AbortSignal.timeout(timeout), dispatcher })
    await res.body?.cancel()
    return res.status
  } catch (err) {
    return err.cause?.code ?? err.name
  }
}

/**
 * The upstreams session k of `count` calls: a number of distinct upstreams spread evenly from 150 to n over the
 * sessions (all n when n < 150), themselves spread evenly over 1…n and shifted by k so sessions overlap only partly.
 */
export function upstreamsOf (k, count, n) {
  const many = n < 150 ? n : Math.round(150 + (n - 150) * (count === 1 ? 1 : k / (count - 1)))
  return Array.from({ length: many }, (_, j) => 1 + (Math.floor(j * n / many) + k) % n)
}

/**
 * The client-session phase. Opens `sessions` sessions (a `statefulShare` of them declaring sampling and roots, spread
 * over the range), then runs all their calls with at most `concurrency` in flight in total, interleaved across the
 * sessions, until done or `deadline` (calls not sent by then count as failed). Returns the sessions' headers, so the
 * caller can end them, and the tally.
 */
export async function runClients ({ url, n, sessions, statefulShare, concurrency, callTimeout, deadline, dispatcher }) {
  const started = performance.now()
  const plans = Array.from({ length: sessions }, (_, k) => ({
    k,
    stateful: Math.floor((k + 1) * statefulShare) > Math.floor(k * statefulShare),
    upstreams: upstreamsOf(k, sessions, n)
  }))
  const opened = await Promise.allSettled(plans.map(p => openSession(url, p.stateful ? STATEFUL_CAPABILITIES : {}, { timeout: callTimeout, dispatcher })))
  const tally = { sessions, stateful: plans.filter(p => p.stateful).length, opened: 0, planned: 0, calls: 0, ok: 0, failed: 0, wrong: 0 }
  Object.assign(tally, { notSent: 0, failures: {}, openFailures: {}, wrongAnswers: [] })
  const jobs = []
  for (let round = 0; round < n; round++) {
    for (const plan of plans) if (round < plan.upstreams.length) jobs.push({ plan, upstream: plan.upstreams[round] })
  }
  plans.forEach((plan, k) => {
    if (opened[k].status === 'fulfilled') {
      plan.headers = opened[k].value
      tally.opened++
    } else {
      group(tally.openFailures, opened[k].reason.message)
    }
  })
  tally.planned = jobs.length
  let next = 0
  let id = 1
  async function worker () {
    while (next < jobs.length && performance.now() < deadline) {
      const { plan, upstream } = jobs[next++]
      if (plan.headers === undefined) continue
      tally.calls++
      const text = `s${plan.k}-u${upstream}`
      const name = serverId(upstream) + '__echo'
      const call = await rpc(url, plan.headers, { jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name, arguments: { text } } }, { timeout: callTimeout, dispatcher })
      if (call.failure !== undefined) {
        tally.failed++
        group(tally.failures, call.failure)
      } else if (call.answer.result?.content?.[0]?.text !== text || call.answer.result.isError) {
        tally.wrong++
        if (tally.wrongAnswers.length < 5) tally.wrongAnswers.push(`${name} "${text}": ${JSON.stringify(call.answer).slice(0, 300)}`)
      } else {
        tally.ok++
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  // Calls of a session that did not open, or not sent before the deadline, failed too.
  tally.notSent = jobs.length - tally.calls
  tally.failed += tally.notSent
  tally.durationMs = performance.now() - started
  return { headers: plans.map(p => p.headers).filter(Boolean), tally }
}

/**
 * Groups failures by their message with ids and numbers blanked out (the HTTP status or JSON-RPC code leading it
 * kept), so one cause is one line however often it happened.
 */
export function group (groups, failure) {
  const [, code = '', rest = failure] = /^((?:HTTP|JSON-RPC) -?\d+)?(.*)$/s.exec(failure)
  const key = code + rest
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\bu\d{4}\b/g, 'u####')
    .replace(/\d+/g, '#')
  groups[key] = (groups[key] ?? 0) + 1
}

function sseMessages (text) {
  const messages = []
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event.split(/\r?\n/).filter(line => line.startsWith('data:')).map(line => line.slice(5).replace(/^ /, ''))
    if (data.length > 0) messages.push(parse(data.join('\n')))
  }
  return messages
}

function parse (text) {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
