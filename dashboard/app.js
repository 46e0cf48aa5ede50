// The gateway's live dashboard: reads /dashboard/feed (an event stream of the /stats report, every couple of
// seconds), keeps the last ten minutes of totals for the charts (uPlot), and shows every server in a table that
// stays fast at a thousand rows (one row element per server, updated in place; search, status filter, sort).
// Actions (disable, enable, drain) go through the admin API. Credentials, when the gateway asks for them, are kept
// in sessionStorage for this tab only and sent as a bearer token. Plain browser JavaScript: no build step.
/* global uPlot */
'use strict'

;(function dashboard () {
  const base = location.pathname.replace(/\/dashboard\/.*$/, '')
  const Plot = uPlot
  const STORAGE_KEY = 'mcp-gateway-dashboard-credential'
  const POINTS = 300
  const RETRY_MS = 2000

  const $ = (id) => document.getElementById(id)
  let credential = sessionStorage.getItem(STORAGE_KEY) || ''
  let actions = false
  let last
  const history = { at: [], rate: [], errors: [], p50: [], p95: [], p99: [] }
  const charts = {}
  const rows = new Map()
  const view = { search: '', status: '', sort: 'status', descending: false }

  const authHeaders = () => (credential === '' ? {} : { authorization: 'Bearer ' + credential })

  // --- the feed ----------------------------------------------------------------------------------------------

  async function connect () {
    let res
    try {
      res = await fetch(base + '/dashboard/feed', { headers: authHeaders(), cache: 'no-store' })
    } catch {
      return offline('the gateway cannot be reached')
    }
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}))
      return askForCredential(credential === '' ? '' : (body.message || 'these credentials are refused'))
    }
    if (!res.ok || res.body === null) return offline(`the feed answered HTTP ${res.status}`)
    $('login').hidden = true
    $('board').hidden = false
    setLive(true)
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const event = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = event.split('\n').filter(line => line.startsWith('data: ')).map(line => line.slice(6)).join('\n')
          if (data !== '') render(JSON.parse(data))
        }
      }
    } catch {}
    offline('the feed ended')
  }

  function offline (why) {
    setLive(false, why)
    setTimeout(connect, RETRY_MS)
  }

  function setLive (on, why) {
    const live = $('live')
    live.className = on ? 'live on' : 'live off'
    live.textContent = on ? 'live' : 'offline'
    live.title = on ? 'the live feed is open' : `offline: ${why}; retrying`
  }

  function askForCredential (error) {
    setLive(false, 'credentials needed')
    $('board').hidden = true
    $('login').hidden = false
    $('login-error').hidden = error === ''
    $('login-error').textContent = error
    $('credential').focus()
  }

  $('login').addEventListener('submit', (event) => {
    event.preventDefault()
    credential = $('credential').value.trim()
    sessionStorage.setItem(STORAGE_KEY, credential)
    connect()
  })

  // --- rendering ---------------------------------------------------------------------------------------------

  function render (report) {
    last = report
    actions = report.actions === true
    document.title = `${report.name} · dashboard`
    $('name').textContent = report.name
    renderTotals(report.totals)
    record(report)
    renderCharts()
    renderServers()
    renderTools(report.tools)
    renderErrors(report.recentErrors)
    renderConnections(report.connections)
    renderAlerts(report.alerts)
  }

  const TRANSPORTS = [['streamable-http', 'Streamable HTTP'], ['sse', 'HTTP+SSE (legacy)'], ['websocket', 'WebSocket']]

  function renderConnections (connections) {
    const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`
    $('connections-count').textContent = `${plural(connections.sessions, 'session')}, ${connections.listening} listening, ` +
      `${connections.initializing} initializing, ${plural(connections.ownUpstreamSessions, 'upstream session')} of their own`
    $('connections').tBodies[0].replaceChildren(...TRANSPORTS.map(([key, label]) => row([label, [String(connections.byTransport[key]), true]])))
    const clients = $('clients').tBodies[0]
    clients.replaceChildren(...connections.clients.map(c => row([c.name, [String(c.sessions), true]])))
    if (connections.clients.length === 0) clients.replaceChildren(emptyRow(2, 'no client connected'))
  }

  /** A table row of cells: a text, or [text, numeric]. */
  function row (cells) {
    const tr = document.createElement('tr')
    for (const cell of cells) {
      const [text, numeric] = Array.isArray(cell) ? cell : [cell, false]
      const td = document.createElement('td')
      td.textContent = text
      if (numeric) td.className = 'num'
      tr.appendChild(td)
    }
    return tr
  }

  function renderAlerts (alerts) {
    const open = alerts.filter(a => a.state !== 'resolved')
    $('alerts-panel').hidden = alerts.length === 0
    $('alerts-count').textContent = `${open.filter(a => a.state === 'firing').length} firing, ${open.filter(a => a.state === 'pending').length} pending`
    $('alerts').replaceChildren(...alerts.map((a) => {
      const li = document.createElement('li')
      li.className = a.state
      const state = document.createElement('span')
      state.className = `badge ${a.state === 'firing' ? 'error' : a.state === 'pending' ? 'pending' : 'active'}`
      state.textContent = a.state
      const what = document.createElement('strong')
      what.textContent = `${a.rule} · ${a.upstream}`
      const message = document.createElement('span')
      message.className = 'message'
      const since = new Date(a.resolvedAt || a.firedAt || a.since).toLocaleTimeString()
      message.textContent = `${a.message} (since ${since})`
      li.append(state, what, message)
      return li
    }))
  }

  function renderTotals (totals) {
    const minute = totals.minute
    $('t-rate').textContent = fmtNumber(minute.callsPerSec)
    $('t-calls').textContent = `${minute.calls} calls in the last minute, ${totals.quarter.calls} in 15 min`
    $('t-errors').textContent = fmtPercent(minute.errorRate)
    $('t-errors').className = 'value' + (minute.errorRate >= 0.05 ? ' bad' : minute.errorRate > 0 ? ' warn' : '')
    $('t-errors-sub').textContent = `${minute.errors} errors in the last minute`
    $('t-latency').textContent = `${fmtMs(minute.p50Ms)} / ${fmtMs(minute.p99Ms)}${minute.p99Ms >= 1000 ? '' : ' ms'}`
    const up = totals.upstreams
    $('t-upstreams').textContent = `${up.active} / ${up.total}`
    $('t-upstreams').className = 'value' + (up.error > 0 ? ' bad' : '')
    $('t-upstreams-sub').textContent = `${up.active} active, ${up.error} in error, ${up.inactive} inactive`
    $('t-sessions').textContent = String(totals.sessions)
    $('t-inflight').textContent = `client sessions; ${totals.inFlight} calls in flight`
    const cache = totals.cache
    $('cache-card').hidden = cache === undefined
    if (cache !== undefined) {
      $('t-cache').textContent = fmtPercent(cache.hitRate)
      $('t-cache-sub').textContent = `${cache.hits} hits, ${cache.misses} misses; ${cache.entries} entries`
    }
  }

  function record (report) {
    const minute = report.totals.minute
    history.at.push(Date.parse(report.at) / 1000)
    history.rate.push(minute.callsPerSec)
    history.errors.push(Math.round(minute.errors / 60 * 100) / 100)
    history.p50.push(minute.p50Ms)
    history.p95.push(minute.p95Ms)
    history.p99.push(minute.p99Ms)
    for (const series of Object.values(history)) if (series.length > POINTS) series.shift()
  }

  function renderCharts () {
    const width = (id) => Math.max(280, $(id).clientWidth)
    if (charts.rate === undefined) {
      charts.rate = new Plot(chartOptions(width('chart-rate'), [
        { label: 'calls/s', stroke: '#3b82f6', fill: 'rgba(59,130,246,0.12)', width: 2 },
        { label: 'errors/s', stroke: '#ef4444', width: 2 }
      ]), [history.at, history.rate, history.errors], $('chart-rate'))
      charts.latency = new Plot(chartOptions(width('chart-latency'), [
        { label: 'p50', stroke: '#10b981', width: 2 },
        { label: 'p95', stroke: '#f59e0b', width: 2 },
        { label: 'p99', stroke: '#ef4444', width: 2 }
      ]), [history.at, history.p50, history.p95, history.p99], $('chart-latency'))
      window.addEventListener('resize', () => {
        charts.rate.setSize({ width: width('chart-rate'), height: 180 })
        charts.latency.setSize({ width: width('chart-latency'), height: 180 })
      })
      return
    }
    charts.rate.setData([history.at, history.rate, history.errors])
    charts.latency.setData([history.at, history.p50, history.p95, history.p99])
  }

  function chartOptions (width, series) {
    return {
      width,
      height: 180,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
      axes: [{ stroke: '#64748b', grid: { stroke: '#e2e8f0' } }, { stroke: '#64748b', grid: { stroke: '#e2e8f0' }, size: 50 }],
      series: [{}, ...series]
    }
  }

  // --- the servers' table: one row per server, updated in place ------------------------------------------------

  const STATUS_ORDER = { error: 0, active: 1, inactive: 2 }
  const sortKey = {
    status: u => STATUS_ORDER[u.status],
    id: u => u.id,
    service: u => u.service,
    calls: u => u.minute.calls,
    errorRate: u => u.minute.errorRate,
    p50: u => u.minute.p50Ms,
    p99: u => u.minute.p99Ms,
    inFlight: u => u.inFlight
  }

  function renderServers () {
    if (last === undefined) return
    const search = view.search.toLowerCase()
    const shown = last.upstreams.filter(u =>
      (view.status === '' || u.status === view.status) &&
      (search === '' || u.id.toLowerCase().includes(search) || u.service.toLowerCase().includes(search) ||
        (u.reason || '').toLowerCase().includes(search)))
    const key = sortKey[view.sort]
    shown.sort((a, b) => {
      const x = key(a)
      const y = key(b)
      const order = x < y ? -1 : x > y ? 1 : (a.id < b.id ? -1 : 1)
      return view.descending ? -order : order
    })
    const tbody = $('servers').tBodies[0]
    const present = new Set(last.upstreams.map(u => u.id))
    for (const [id, row] of rows) {
      if (!present.has(id)) {
        row.tr.remove()
        rows.delete(id)
      }
    }
    const fragment = document.createDocumentFragment()
    for (const u of shown) fragment.appendChild(serverRow(u).tr)
    tbody.replaceChildren(fragment)
    $('servers-count').textContent = shown.length === last.upstreams.length
      ? `${last.upstreams.length}`
      : `${shown.length} of ${last.upstreams.length}`
    document.querySelectorAll('#servers th[data-sort]').forEach((th) => {
      th.classList.toggle('sorted', th.dataset.sort === view.sort)
      th.classList.toggle('descending', th.dataset.sort === view.sort && view.descending)
    })
  }

  function serverRow (u) {
    let row = rows.get(u.id)
    if (row === undefined) {
      const tr = document.createElement('tr')
      const cells = {}
      for (const name of ['status', 'id', 'service', 'calls', 'errors', 'p50', 'p99', 'inFlight', 'reason', 'actions']) {
        const td = document.createElement('td')
        if (['calls', 'errors', 'p50', 'p99', 'inFlight'].includes(name)) td.className = 'num'
        if (name === 'reason') td.className = 'reason'
        tr.appendChild(td)
        cells[name] = td
      }
      row = { tr, cells, key: '' }
      rows.set(u.id, row)
    }
    const draining = u.status === 'inactive' && u.state !== 'disabled'
    const key = [u.status, u.state, u.service, u.minute.calls, u.minute.errorRate, u.minute.p50Ms, u.minute.p99Ms, u.inFlight, u.reason,
      u.anomaly.latency, u.anomaly.errors, actions].join('|')
    if (row.key === key) return row
    row.key = key
    const { cells } = row
    cells.status.replaceChildren(badge(u.status))
    cells.id.textContent = u.id
    cells.service.textContent = u.service
    cells.calls.textContent = String(u.minute.calls)
    cells.errors.textContent = u.minute.calls === 0 ? '–' : fmtPercent(u.minute.errorRate)
    cells.errors.classList.toggle('bad', u.minute.errorRate >= 0.05)
    cells.p50.textContent = u.minute.calls === 0 ? '–' : fmtMs(u.minute.p50Ms)
    cells.p99.textContent = u.minute.calls === 0 ? '–' : fmtMs(u.minute.p99Ms)
    cells.inFlight.textContent = String(u.inFlight)
    const anomalous = Math.max(u.anomaly.latency, u.anomaly.errors) > 4
    cells.reason.textContent = u.reason || (draining ? 'drained (weight 0)' : '') ||
      (anomalous ? `anomalous ${u.anomaly.latency >= u.anomaly.errors ? 'latency' : 'error rate'} (score ${Math.max(u.anomaly.latency, u.anomaly.errors).toFixed(1)})` : '')
    cells.reason.classList.toggle('warn', anomalous && !u.reason)
    cells.reason.title = cells.reason.textContent
    cells.actions.replaceChildren()
    if (actions) {
      if (u.state === 'disabled') cells.actions.appendChild(button('Enable', u.id, { enabled: true }))
      else {
        cells.actions.appendChild(button('Disable', u.id, { enabled: false }))
        cells.actions.appendChild(draining ? button('Undrain', u.id, { weight: null }) : button('Drain', u.id, { weight: 0 }))
      }
    }
    return row
  }

  function badge (status) {
    const span = document.createElement('span')
    span.className = `badge ${status}`
    span.textContent = status
    return span
  }

  function button (label, id, change) {
    const b = document.createElement('button')
    b.type = 'button'
    b.textContent = label
    b.dataset.id = id
    b.dataset.change = JSON.stringify(change)
    return b
  }

  $('servers').tBodies[0].addEventListener('click', async (event) => {
    const b = event.target.closest('button[data-id]')
    if (b === null) return
    b.disabled = true
    const res = await fetch(`${base}/admin/servers/${encodeURIComponent(b.dataset.id)}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', ...authHeaders() },
      body: b.dataset.change
    }).catch(() => undefined)
    if (res === undefined || !res.ok) {
      const body = res === undefined ? {} : await res.json().catch(() => ({}))
      toast(`${b.textContent} ${b.dataset.id} failed: ${body.message || (res === undefined ? 'the gateway cannot be reached' : `HTTP ${res.status}`)}`, true)
      b.disabled = false
      return
    }
    toast(`${b.textContent}: ${b.dataset.id}`)
  })

  document.querySelectorAll('#servers th[data-sort]').forEach((th) => {
    th.addEventListener('click', () => {
      view.descending = view.sort === th.dataset.sort ? !view.descending : ['calls', 'errorRate', 'p50', 'p99', 'inFlight'].includes(th.dataset.sort)
      view.sort = th.dataset.sort
      renderServers()
    })
  })
  $('search').addEventListener('input', (event) => { view.search = event.target.value; renderServers() })
  $('status-filter').addEventListener('change', (event) => { view.status = event.target.value; renderServers() })

  // --- tools and errors --------------------------------------------------------------------------------------

  function renderTools (tools) {
    const tbody = $('tools').tBodies[0]
    tbody.replaceChildren(...tools.map((tool) => {
      const tr = document.createElement('tr')
      for (const [text, numeric] of [[tool.name], [tool.service], [String(tool.quarter.calls), true],
        [fmtPercent(tool.quarter.errorRate), true], [fmtMs(tool.quarter.p99Ms), true]]) {
        const td = document.createElement('td')
        td.textContent = text
        if (numeric === true) td.className = 'num'
        tr.appendChild(td)
      }
      return tr
    }))
    if (tools.length === 0) tbody.replaceChildren(emptyRow(5, 'no calls in the last 15 minutes'))
  }

  function renderErrors (errors) {
    const list = $('errors')
    list.replaceChildren(...errors.map((e) => {
      const li = document.createElement('li')
      const time = document.createElement('time')
      time.dateTime = e.at
      time.textContent = new Date(e.at).toLocaleTimeString()
      const where = document.createElement('strong')
      where.textContent = e.tool || `${e.upstream} ${e.method}`
      const what = document.createElement('span')
      what.textContent = `${e.outcome} on ${e.upstream}: ${e.message}`
      li.append(time, where, what)
      return li
    }))
    if (errors.length === 0) {
      const li = document.createElement('li')
      li.className = 'none'
      li.textContent = 'no errors recently'
      list.replaceChildren(li)
    }
  }

  function emptyRow (span, text) {
    const tr = document.createElement('tr')
    const td = document.createElement('td')
    td.colSpan = span
    td.className = 'none'
    td.textContent = text
    tr.appendChild(td)
    return tr
  }

  function toast (text, bad = false) {
    const div = document.createElement('div')
    div.className = 'toast' + (bad ? ' bad' : '')
    div.setAttribute('role', 'status')
    div.textContent = text
    document.body.appendChild(div)
    setTimeout(() => div.remove(), 4000)
  }

  const fmtNumber = (n) => (n >= 100 ? Math.round(n).toLocaleString() : n.toFixed(n >= 10 ? 1 : 2))
  const fmtPercent = (r) => (r === 0 ? '0%' : r < 0.001 ? '<0.1%' : `${(r * 100).toFixed(r < 0.1 ? 1 : 0)}%`)
  const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)}`)

  connect()
})()
