import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { chromium, type Browser } from 'playwright-core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'
import { startGateway, waitFor } from '../helper.js'

/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core; installed here with apt-get when
 * missing) against a gateway with authentication and three upstreams on loopback (the plain-node:http fixture): it
 * asks for a key, loads with one that has the admin role, shows the servers, its numbers change live as calls are
 * made, its actions drain and disable a server through the admin API, and nothing goes to the browser console. A
 * screenshot is written to test/output/dashboard.png.
 */

// What page.evaluate and page.waitForFunction run, they run in the browser: its `document`, loosely typed here (the
// test's TypeScript has Node's library, not the DOM's).
declare const document: any

const CHROMIUM = '/usr/bin/chromium'
const OUTPUT = fileURLToPath(new URL('../output/', import.meta.url))
const ADMIN_KEY = 'dashboard-admin-key-0123456789'
const USER_KEY = 'dashboard-user-key-0123456789'

function ensureChromium (): void {
  if (existsSync(CHROMIUM)) return
  // CI machines are fresh: the browser comes from Debian, as the rest of the test's tools do.
  execFileSync('apt-get', ['update'], { stdio: 'ignore' })
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

async function call (base: string, name: string): Promise<number> {
  const res = await fetch(base + '/mcp/tools/call', {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': USER_KEY }, body: JSON.stringify({ name, arguments: {} })
  })
  await res.arrayBuffer()
  return res.status
}

test('the dashboard: login, servers, live numbers, actions, no console errors, a screenshot', { timeout: 180_000 }, async (t) => {
  ensureChromium()
  const replicas = [await startPlainServer(t, 'search-1'), await startPlainServer(t, 'search-2'), await startPlainServer(t, 'files')]
  replicas[2]!.controls.failCalls = 3
  const gateway = await startGateway(t, {
    name: 'acme-gateway',
    dashboard: { intervalMs: 500 },
    circuitBreaker: { failureThreshold: 0 },
    auth: {
      apiKeys: [{ name: 'ops', key: ADMIN_KEY, roles: ['ops'] }, { name: 'app', key: USER_KEY, roles: ['app'] }],
      roles: { ops: { admin: true, tools: { allow: ['*'] } }, app: { tools: { allow: ['*'] } } }
    },
    servers: [
      { id: 'search-1', service: 'search', url: replicas[0]!.url },
      { id: 'search-2', service: 'search', url: replicas[1]!.url },
      { id: 'files', url: replicas[2]!.url }
    ]
  })

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } })
  const problems: string[] = []
  page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`) })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))

  // The feed refuses a key without the admin role; the page asks again.
  await page.goto(gateway.base + '/dashboard')
  t.match(page.url(), /\/dashboard\/$/, '/dashboard redirects to the page')
  await page.waitForSelector('#login:not([hidden])')
  await page.fill('#credential', USER_KEY)
  await page.click('#login button')
  await page.waitForSelector('#login-error:not([hidden])')
  t.match(await page.textContent('#login-error'), /admin/i, 'a key without the admin role is refused, and the page says so')
  // The browser logs the refused request itself; that is not the page's error.
  problems.length = 0

  await page.fill('#credential', ADMIN_KEY)
  await page.click('#login button')
  await page.waitForSelector('#board:not([hidden])')
  await page.waitForFunction(() => document.querySelectorAll('#servers tbody tr').length === 3)
  t.equal(await page.textContent('#name'), 'acme-gateway')
  t.equal(await page.textContent('#live'), 'live')
  t.equal(await page.textContent('#t-upstreams'), '3 / 3')

  // Numbers change live as calls are made.
  t.equal(await page.textContent('#t-rate'), '0.00')
  for (let i = 0; i < 30; i++) t.equal(await call(gateway.base, 'search__read'), 200)
  const statuses = []
  for (let i = 0; i < 9; i++) statuses.push(await call(gateway.base, 'files__write'))
  t.same(statuses.sort(), [200, 200, 200, 200, 200, 200, 502, 502, 502], 'every third call to files fails')
  await page.waitForFunction(() => document.getElementById('t-rate')?.textContent !== '0.00')
  await page.waitForFunction(() => document.querySelector('#tools tbody')?.textContent?.includes('search__read') === true)
  await page.waitForFunction(() => document.querySelector('#errors')?.textContent?.includes('answered HTTP 500') === true)
  // The feed's next report after the last call: earlier ones may have counted fewer.
  await page.waitForFunction(() => document.getElementById('t-calls')?.textContent?.startsWith('39 calls') === true)
  t.match(await page.textContent('#t-calls'), /^39 calls in the last minute/)
  t.match(await page.textContent('#t-errors'), /^(7\.7|8)%$/, '3 of 39 failed')

  // Client connections: an SDK client over Streamable HTTP shows up by its name and transport.
  const client = new Client({ name: 'claude-desktop-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(gateway.mcp, { requestInit: { headers: { 'x-api-key': USER_KEY } } }))
  t.teardown(() => client.close())
  await page.waitForFunction(() => document.querySelector('#clients tbody')?.textContent?.includes('claude-desktop-test') === true)
  t.match(await page.textContent('#connections tbody tr:first-child'), /Streamable HTTP\s*1/)
  t.equal(await page.isVisible('#cache-card'), false, 'no cache configured: no cache card')

  // Search, filter and sort.
  await page.fill('#search', 'search-')
  await page.waitForFunction(() => document.querySelectorAll('#servers tbody tr').length === 2)
  await page.fill('#search', '')
  await page.click('#servers th[data-sort="calls"]')
  const first = await page.textContent('#servers tbody tr:first-child td:nth-child(2)')
  t.match(first, /search-[12]/, 'sorted by calls, most first')

  // An action: drain search-2 through the admin API; the table shows it inactive.
  await page.click('#servers tbody tr:has(td:text-is("search-2")) button:text-is("Drain")')
  await page.waitForFunction(() => [...document.querySelectorAll('#servers tbody tr')]
    .some((tr: any) => tr.children[1]?.textContent === 'search-2' && tr.textContent?.includes('inactive') === true))
  t.equal(gateway.app.mcpRegistry.get('search-2')?.weight, 0, 'drained in the registry')
  t.equal(gateway.app.mcpProxy.connections.get('search-2')?.state, 'up', 'its connection kept')
  await page.click('#servers tbody tr:has(td:text-is("files")) button:text-is("Disable")')
  await waitFor('files disabled', () => gateway.app.mcpProxy.connections.get('files')?.state === 'disabled' || gateway.app.mcpRegistry.get('files')?.enabled === false)
  await page.waitForFunction(() => [...document.querySelectorAll('#servers tbody tr')]
    .some((tr: any) => tr.children[1]?.textContent === 'files' && tr.querySelector('button')?.textContent === 'Enable'))
  await page.click('#servers tbody tr:has(td:text-is("files")) button:text-is("Enable")')
  await waitFor('files back', () => gateway.app.mcpProxy.connections.get('files')?.state === 'up')
  await page.click('#servers tbody tr:has(td:text-is("search-2")) button:text-is("Undrain")')
  await waitFor('search-2 back in rotation', () => gateway.app.mcpRegistry.get('search-2')?.weight === 1)

  for (let i = 0; i < 20; i++) await call(gateway.base, 'search__read')
  await page.waitForFunction(() => document.querySelectorAll('#servers tbody .badge.active').length === 3)
  await new Promise(resolve => setTimeout(resolve, 1200))
  mkdirSync(OUTPUT, { recursive: true })
  await page.screenshot({ path: OUTPUT + 'dashboard.png', fullPage: true })
  t.ok(existsSync(OUTPUT + 'dashboard.png'), 'a screenshot in test/output/')
  t.same(problems, [], 'nothing in the browser console')
})

test('the dashboard with a thousand servers: every row shown, search and sort over all of them', { timeout: 120_000 }, async (t) => {
  ensureChromium()
  const live = await startPlainServer(t, 'live')
  // A thousand registered servers (disabled: the table is what is measured here, not a thousand upstreams).
  const servers = [{ id: 'live', url: live.url }, ...Array.from({ length: 1000 }, (_, i) => ({ id: `srv-${String(i).padStart(4, '0')}`, url: live.url, enabled: false }))]
  const gateway = await startGateway(t, { dashboard: { intervalMs: 1000 }, servers })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()) })
  await page.goto(gateway.base + '/dashboard/')
  await page.waitForFunction(() => document.querySelectorAll('#servers tbody tr').length === 1001, undefined, { timeout: 30_000 })
  t.equal(await page.textContent('#t-upstreams-sub'), '1 active, 0 in error, 1000 inactive')
  // How long a search and a re-sort over the thousand rows take in the page (reported, not asserted).
  const ms = await page.evaluate(() => {
    const search = document.getElementById('search')
    const started = performance.now()
    search.value = 'srv-09'
    search.dispatchEvent(new Event('input'))
    const filtered = performance.now()
    search.value = ''
    search.dispatchEvent(new Event('input'))
    document.querySelector('#servers th[data-sort="id"]').click()
    return { filter: filtered - started, all: performance.now() - filtered }
  })
  t.equal(await page.locator('#servers tbody tr').count(), 1001)
  t.equal(await page.textContent('#servers tbody tr:first-child td:nth-child(2)'), 'live', 'sorted by id')
  t.comment(`search over 1001 rows: ${ms.filter.toFixed(1)} ms; back to all and re-sorted: ${ms.all.toFixed(1)} ms`)
  await page.fill('#search', 'srv-09')
  t.equal(await page.locator('#servers tbody tr').count(), 100, 'srv-0900 … srv-0999')
  t.equal(await page.textContent('#servers-count'), '100 of 1001')
  t.same(problems, [])
})
