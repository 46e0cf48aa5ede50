// Scale-bench report: one block per N as it finishes, a summary table with a column per N, and the targets at
// N=1000 (or the largest N run) with PASS/FAIL. A figure a failed phase never produced prints as "–".

const TARGET_N = 1000
const RSS_BUDGET = 512 * 1024 * 1024
const RELEASE_BUDGET = 90_000
const CPU_BUDGET = 10
const TOP_FAILURES = 4

const NONE = '–'
const mb = (bytes) => bytes == null ? NONE : (bytes / 1048576).toFixed(0)
const s = (ms) => ms == null ? NONE : (ms / 1000).toFixed(1)
const ms = (value) => value == null ? NONE : value < 10 ? value.toFixed(1) : value.toFixed(0)
const int = (value) => value == null ? NONE : String(Math.round(value))
const pct = (value) => value == null ? NONE : value.toFixed(1)

/** What the gateway holds at one moment: its own fds and RSS, the fixtures' view of its sessions and GET streams. */
/** The phase's peak RSS, where the sampler marked one (which phase the run's peak is in). */
function peakOf (phase) {
  return phase?.peak?.rss ? `; phase peak RSS ${mb(phase.peak.rss)} MB` : ''
}

function held (snap) {
  if (snap == null) return NONE
  return `fds ${snap.fds ?? NONE}, RSS ${mb(snap.rss)} MB, upstream sessions ${snap.sessions}, GET streams ${snap.streams}, ` +
    `sockets ${snap.connections}` + (snap.acceptErrors > 0 ? `, fixture accept errors ${snap.acceptErrors}` : '')
}

function load (result) {
  if (result == null) return NONE
  const failed = result.failed + (result.verifyFailed ?? 0)
  return `${result.callsPerSecond.toFixed(0)} calls/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ${failed} failed` +
    (failed > 0 ? ` (${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx, ${result.rpcErrors} JSON-RPC errors)` : '')
}

function failures (groups, indent) {
  return Object.entries(groups ?? {}).sort((a, b) => b[1] - a[1]).slice(0, TOP_FAILURES)
    .map(([what, count]) => `${indent}${String(count).padStart(6)} × ${what.slice(0, 160)}`)
}

export function formatRun (run) {
  const lines = [`N=${run.n} (${run.n - run.down} upstreams + ${run.down} in the down share, ${run.expectedTools} tools; gateway fd limit ${run.fdLimit ?? NONE})`]
  const row = (label, text) => lines.push(`  ${label.padEnd(22)} ${text}`)
  row('catalog full', run.catalog?.full ? `${s(run.catalog.ms)} s after start` : `not full: ${run.catalog?.tools ?? 0} tools`)
  row('idle, at catalog', held(run.idle?.atCatalog))
  row('idle, 10 s later', `${held(run.idle?.after)}; CPU ${pct(run.idle?.cpuPercent)}% of a core`)
  if (run.list) {
    row('tools/list', `page of ${run.list.pageSize}: p50 ${ms(run.list.pageP50)} ms, p99 ${ms(run.list.pageP99)} ms (${run.list.requests} requests); ` +
      `all ${run.list.pages} pages ${ms(run.list.walkMs)} ms`)
  }
  if (run.calls) {
    row('tools/call direct', load(run.calls.direct))
    row('tools/call gateway', `${load(run.calls.gateway)}; ${run.calls.ratio?.toFixed(2) ?? NONE} × direct (over ${run.calls.upstreams} upstreams)` + peakOf(run.calls))
    lines.push(...failures({ ...run.calls.direct?.failures, ...run.calls.gateway?.failures, ...run.calls.gateway?.verifyFailures }, ' '.repeat(25)))
  }
  const c = run.clients
  if (c) {
    row(`${c.sessions} client sessions`, `${c.calls} calls of ${c.planned} (${c.stateful} stateful sessions, ${c.opened} opened) in ${s(c.durationMs)} s: ` +
      `${c.failed} failed` + (c.notSent > 0 ? ` (${c.notSent} not sent)` : '') + (c.wrong > 0 ? `, ${c.wrong} WRONG` : ''))
    lines.push(...failures({ ...c.openFailures, ...c.failures }, ' '.repeat(25)))
    row('  then', `${held(c.after)}; peak fds ${c.peak.fds}, peak RSS ${mb(c.peak.rss)} MB`)
  }
  const r = run.release
  if (r) {
    row('clients gone', `fds ≤ ${r.threshold} ${r.backMs == null ? 'not within 120 s' : `after ${s(r.backMs)} s`} (peak ${r.peak.fds} meanwhile); ${held(r.end)}`)
  }
  const m = run.metrics
  if (m) {
    row('/metrics', `${(m.scrape.bytes / 1024).toFixed(0)} kB, scrape p50 ${ms(m.scrape.p50)} ms, max ${ms(m.scrape.max)} ms`)
    row('  calls, no scrape', load(m.without))
    row('  calls, scrape/1 s', `${load(m.with)}; ${m.with.scrapes} scrapes, slowest ${ms(m.with.scrapeMax)} ms` + peakOf(m))
  }
  const d = run.downed
  if (d) {
    row(`${run.down} down`, `${d.ms == null ? 'not seen' : `seen after ${s(d.ms)} s`}; idle CPU ${pct(d.cpuPercent)}% of a core; ${held(d.after)}` + peakOf(d))
  }
  row('peak', `fds ${run.peak?.fds ?? NONE}, RSS ${mb(run.peak?.rss)} MB` + (hitLimit(run) ? ' — HIT THE FD LIMIT' : '') +
    (run.emfileLogged ? ' (EMFILE in the gateway log)' : ''))
  for (const error of run.errors) lines.push(`  ERROR ${error}`)
  for (const failure of run.functional) lines.push(`  FAILED ${failure}`)
  return lines.join('\n')
}

const SUMMARY = [
  ['catalog full (s)', r => r.catalog?.full ? s(r.catalog.ms) : 'not full'],
  ['idle fds', r => int(r.idle?.after.fds)],
  ['idle RSS (MB)', r => mb(r.idle?.after.rss)],
  ['idle upstream sessions/GET', r => r.idle ? `${r.idle.after.sessions}/${r.idle.after.streams}` : NONE],
  ['idle CPU (% core)', r => pct(r.idle?.cpuPercent)],
  ['tools/list page p50/p99 (ms)', r => r.list ? `${ms(r.list.pageP50)}/${ms(r.list.pageP99)}` : NONE],
  ['tools/list all pages (ms)', r => r.list ? `${ms(r.list.walkMs)} (${r.list.pages})` : NONE],
  ['calls/s direct', r => int(r.calls?.direct?.callsPerSecond)],
  ['calls/s gateway', r => int(r.calls?.gateway?.callsPerSecond)],
  ['gateway/direct', r => r.calls?.ratio?.toFixed(2) ?? NONE],
  ['p99 direct/gateway (ms)', r => r.calls?.gateway ? `${r.calls.direct.p99}/${r.calls.gateway.p99}` : NONE],
  ['client calls failed/all', r => r.clients ? `${r.clients.failed}/${r.clients.planned}` : NONE],
  ['client phase (s)', r => s(r.clients?.durationMs)],
  ['clients: fds (peak)', r => r.clients ? `${r.clients.after.fds ?? NONE} (${r.clients.peak.fds})` : NONE],
  ['clients: RSS (MB)', r => mb(r.clients?.after.rss)],
  ['clients: upstream sessions/GET', r => r.clients ? `${r.clients.after.sessions}/${r.clients.after.streams}` : NONE],
  ['clients gone: peak fds', r => int(r.release?.peak.fds)],
  ['fds back after (s)', r => r.release ? (r.release.backMs == null ? '>120' : s(r.release.backMs)) : NONE],
  ['after: fds/RSS MB/sessions', r => r.release ? `${r.release.end.fds}/${mb(r.release.end.rss)}/${r.release.end.sessions}` : NONE],
  ['/metrics size (kB)', r => r.metrics ? (r.metrics.scrape.bytes / 1024).toFixed(0) : NONE],
  ['/metrics scrape p50/max (ms)', r => r.metrics ? `${ms(r.metrics.scrape.p50)}/${ms(r.metrics.scrape.max)}` : NONE],
  ['calls/s, p99 no scrape', r => r.metrics ? `${int(r.metrics.without.callsPerSecond)}, ${r.metrics.without.p99}` : NONE],
  ['calls/s, p99 scrape/1 s', r => r.metrics ? `${int(r.metrics.with.callsPerSecond)}, ${r.metrics.with.p99}` : NONE],
  ['10% down: seen after (s)', r => r.downed ? (r.downed.ms == null ? 'not seen' : s(r.downed.ms)) : NONE],
  ['10% down: idle CPU (% core)', r => pct(r.downed?.cpuPercent)],
  ['10% down: fds/RSS MB', r => r.downed?.after ? `${r.downed.after.fds}/${mb(r.downed.after.rss)}` : NONE],
  ['peak fds/RSS MB', r => r.peak ? `${r.peak.fds}/${mb(r.peak.rss)}` : NONE],
  ['functional failures', r => String(r.functional.length)]
]

export function formatSummary (runs) {
  const cells = [['', ...runs.map(r => `N=${r.n}`)], ...SUMMARY.map(([label, cell]) => [label, ...runs.map(cell)])]
  const widths = cells[0].map((_, i) => Math.max(...cells.map(line => line[i].length)))
  return cells.map(line => line.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join('  ')).join('\n')
}

/** Every call the gateway was asked to make that did not answer right, over all phases of one run. */
export function failedCalls (run) {
  const loads = [run.calls?.gateway, run.metrics?.without, run.metrics?.with]
  return (run.clients?.failed ?? 0) + loads.reduce((sum, l) => sum + (l ? l.failed : 0), 0) + (run.calls?.gateway?.verifyFailed ?? 0) +
    (run.metrics?.verifyFailed ?? 0)
}

function hitLimit (run) {
  return run.fdLimit != null && (run.peak?.fds ?? 0) >= run.fdLimit * 0.98
}

export function formatTargets (runs) {
  const run = runs.find(r => r.n === TARGET_N) ?? runs.reduce((a, b) => b.n > a.n ? b : a)
  const fdBudget = Math.round(2.5 * run.n + 500)
  const failed = failedCalls(run)
  const checks = [
    ['0 failed calls', failed === 0 && run.errors.length === 0,
      `${failed} failed` + (run.errors.length > 0 ? `, ${run.errors.length} phases failed` : '')],
    [`fds ≤ 2.5 per upstream + 500 = ${fdBudget}`, run.peak != null && run.peak.fds <= fdBudget,
      `peak ${run.peak?.fds ?? NONE}` + (hitLimit(run) ? ` (the fd limit, ${run.fdLimit})` : '')],
    ['RSS ≤ 512 MB', run.peak != null && run.peak.rss <= RSS_BUDGET, `peak ${mb(run.peak?.rss)} MB`],
    ['fds given back ≤ 90 s after the clients leave', run.release?.backMs != null && run.release.backMs <= RELEASE_BUDGET,
      run.release == null ? 'not measured' : run.release.backMs == null ? `not within 120 s (${run.release.end.fds} fds, threshold ${run.release.threshold})` : `after ${s(run.release.backMs)} s`],
    ['10% of upstreams down: idle CPU < 10% of a core', run.downed?.cpuPercent != null && run.downed.cpuPercent < CPU_BUDGET,
      `${pct(run.downed?.cpuPercent)}%`]
  ]
  const title = run.n === TARGET_N ? `targets at N=${TARGET_N}:` : `targets (N=${TARGET_N} was not run; at N=${run.n}):`
  return [title, ...checks.map(([what, pass, figure]) => `  ${pass ? 'PASS' : 'FAIL'}  ${what.padEnd(48)} ${figure}`)].join('\n')
}
