// Bench helper: the summary of one target's autocannon result, and the table run.mjs prints of them.

/** `ratio` is this target's mean calls/s over direct's (1 for direct itself). */
export function summarize (name, url, result) {
  return {
    target: name,
    url,
    callsPerSecond: result.requests.average,
    calls: result.requests.total,
    latencyMs: {
      mean: result.latency.average,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max
    },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    mismatches: result.mismatches,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]))
  }
}

const COLUMNS = [
  ['target', r => r.target],
  ['calls/s', r => r.callsPerSecond.toFixed(0)],
  ['p50 ms', r => String(r.latencyMs.p50)],
  ['p99 ms', r => String(r.latencyMs.p99)],
  ['errors', r => String(r.errors)],
  ['non-2xx', r => String(r.non2xx)],
  ['bad body', r => String(r.mismatches)],
  ['x direct', r => r.ratio.toFixed(2)]
]

export function formatTable (rows) {
  const cells = [COLUMNS.map(([title]) => title), ...rows.map(row => COLUMNS.map(([, cell]) => cell(row)))]
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map(line => line[i].length)))
  return cells.map(line => line.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join('  ')).join('\n')
}
