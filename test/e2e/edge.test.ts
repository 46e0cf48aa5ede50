import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test, type Test } from 'tap'
import { Agent, fetch as undiciFetch } from 'undici'
import { freePort, startGateway, waitFor } from '../helper.js'

/**
 * The HTTP edge: CORS preflights and exposed headers for browser origins, security headers (also on SSE answers,
 * which are written after the reply is hijacked), an over-limit body answered 413 after it is drained, and HTTPS
 * with mTLS through the real CLI, with certificates made by openssl in the test.
 */

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const INIT = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } }
})

test('CORS: a preflight from an allowed origin is answered; the MCP headers are allowed and exposed; others get no grant', async (t) => {
  const gateway = await startGateway(t, { servers: [], allowedOrigins: ['https://app.example.com'] })
  const preflight = await fetch(gateway.mcp, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://app.example.com',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type, mcp-session-id, mcp-protocol-version, authorization'
    }
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example.com')
  t.match(preflight.headers.get('access-control-allow-methods'), /POST/)
  for (const header of ['mcp-session-id', 'mcp-protocol-version', 'authorization', 'last-event-id']) {
    t.match(preflight.headers.get('access-control-allow-headers'), new RegExp(header), `${header} may be sent`)
  }
  const init = await fetch(gateway.mcp, { method: 'POST', headers: { ...JSON_HEADERS, origin: 'https://app.example.com' }, body: INIT })
  t.equal(init.status, 200)
  t.match(init.headers.get('access-control-expose-headers'), /mcp-session-id/, 'the session id can be read by the page')
  t.equal(init.headers.get('access-control-allow-origin'), 'https://app.example.com')

  const foreign = await fetch(gateway.mcp, {
    method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' }
  })
  t.equal(foreign.headers.get('access-control-allow-origin'), null, 'another origin gets no grant')
})

test('security headers on JSON answers and on SSE streams written after the reply is hijacked', async (t) => {
  const gateway = await startGateway(t, { servers: [], allowedOrigins: ['https://app.example.com'] })
  const init = await fetch(gateway.mcp, { method: 'POST', headers: JSON_HEADERS, body: INIT })
  t.equal(init.headers.get('x-content-type-options'), 'nosniff')
  t.match(init.headers.get('content-security-policy'), /default-src 'none'/)
  t.equal(init.headers.get('strict-transport-security'), null, 'no HSTS over plain HTTP')
  const sessionId = init.headers.get('mcp-session-id') as string
  await fetch(gateway.mcp, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': sessionId }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const stream = await fetch(gateway.mcp, {
    headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, origin: 'https://app.example.com' }, signal: controller.signal
  })
  t.equal(stream.headers.get('content-type'), 'text/event-stream')
  t.equal(stream.headers.get('x-content-type-options'), 'nosniff', 'helmet\'s headers on the stream')
  t.equal(stream.headers.get('access-control-allow-origin'), 'https://app.example.com', 'CORS headers on the stream')
})

/** Sends `size` bytes of body, with Content-Length or chunked, and reports what the client saw. */
function sendLarge (url: URL, size: number, chunked: boolean): Promise<string> {
  return new Promise(resolve => {
    const headers: Record<string, string | number> = { ...JSON_HEADERS }
    if (!chunked) headers['content-length'] = size
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve(`${res.statusCode} ${body}`))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`))
    const chunk = Buffer.alloc(64 * 1024, 'a')
    let sent = 0
    const pump = () => {
      while (sent < size) {
        sent += chunk.length
        if (!req.write(chunk)) {
          req.once('drain', pump)
          return
        }
      }
      req.end()
    }
    pump()
  })
}

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
const TS_LOADER = new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href

/** The real CLI in a process of its own (an in-process server would share the client's event loop and timing). */
async function startCli (t: Test, config: Record<string, unknown>, dir: string): Promise<void> {
  const file = join(dir, 'gateway.json')
  await writeFile(file, JSON.stringify({ logLevel: 'warn', servers: [], ...config }))
  const child: ChildProcess = spawn(process.execPath, [`--import=${TS_LOADER}`, CLI, '--config', file], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
}

test('a body over bodyLimit is answered 413 once the client has sent it: the client reads the answer, no EPIPE', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-limit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  await startCli(t, { port, bodyLimit: 64 * 1024 }, dir)
  const mcp = new URL(`http://127.0.0.1:${port}/mcp`)
  await waitFor('the gateway', () => fetch(`http://127.0.0.1:${port}/health`).then(() => true, () => false))
  for (const chunked of [false, true]) {
    const seen = await sendLarge(mcp, 8 * 1024 * 1024, chunked)
    t.match(seen, /^413 .*too large/, `${chunked ? 'chunked' : 'Content-Length'}: ${seen.slice(0, 60)}`)
  }
  const small = await fetch(mcp, { method: 'POST', headers: JSON_HEADERS, body: INIT })
  t.equal(small.status, 200, 'a body within the limit passes')
  // The same embedded (in this process, where the timing is kinder): the REST routes too.
  const gateway = await startGateway(t, { servers: [], bodyLimit: 64 * 1024 })
  t.match(await sendLarge(gateway.mcp, 2 * 1024 * 1024, true), /^413 /, 'embedded: 413')
  t.match(await sendLarge(new URL(gateway.base + '/mcp/tools/list'), 2 * 1024 * 1024, false), /^413 /, 'REST: 413')
})

/** A CA, a server certificate for 127.0.0.1 and a client certificate (CN=ci-bot) it signed, made by openssl. */
async function certificates (t: Test): Promise<Record<'dir' | 'ca' | 'serverKey' | 'serverCert' | 'clientKey' | 'clientCert' | 'strangerKey' | 'strangerCert', string>> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca')
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const [name, cn, ext] of [['server', 'localhost', true], ['client', 'ci-bot', false]] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1',
      ...(ext ? ['-extfile', 'san.ext'] : []))
  }
  // Self-signed with the same CN: not signed by the CA, so it must not count.
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'stranger.key', '-out', 'stranger.crt', '-days', '1', '-subj', '/CN=ci-bot')
  const read = (file: string) => readFile(join(dir, file), 'utf8')
  return {
    dir,
    ca: await read('ca.crt'),
    serverKey: join(dir, 'server.key'),
    serverCert: join(dir, 'server.crt'),
    clientKey: await read('client.key'),
    clientCert: await read('client.crt'),
    strangerKey: await read('stranger.key'),
    strangerCert: await read('stranger.crt')
  }
}

test('HTTPS from the CLI with tls files; with requestCert, a client certificate signed by ca authenticates as its subject', async (t) => {
  const certs = await certificates(t)
  const port = await freePort()
  await startCli(t, {
    port,
    tls: { key: certs.serverKey, cert: certs.serverCert, ca: join(certs.dir, 'ca.crt'), requestCert: true },
    auth: { certificates: [{ subject: 'ci-bot', roles: [] }], apiKeys: [{ name: 'k', key: 'k'.repeat(16) }] }
  }, certs.dir)
  const base = `https://127.0.0.1:${port}`
  const client = (cert?: string, key?: string) => new Agent({ connect: { ca: certs.ca, ...(cert !== undefined ? { cert, key } : {}) } })
  const initialize = (dispatcher: Agent, headers: Record<string, string> = {}) =>
    undiciFetch(base + '/mcp', { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: INIT, dispatcher }).then(res => res.status)
  await waitFor('the gateway over HTTPS', async () => {
    try {
      return (await undiciFetch(base + '/health', { dispatcher: client() })).status > 0
    } catch {
      return false
    }
  })
  const health = await undiciFetch(base + '/health', { dispatcher: client() })
  t.equal(health.status, 503, 'HTTPS answers (no upstream: 503)')
  t.match(health.headers.get('strict-transport-security'), /max-age/, 'HSTS over HTTPS')
  t.equal(await initialize(client(certs.clientCert, certs.clientKey)), 200, 'the CA-signed client certificate of ci-bot authenticates')
  t.equal(await initialize(client()), 401, 'no certificate, no credential: 401')
  t.equal(await initialize(client(certs.strangerCert, certs.strangerKey)), 401, 'a self-signed certificate with the same CN does not count')
  t.equal(await initialize(client(), { 'x-api-key': 'k'.repeat(16) }), 200, 'other credentials still work without a certificate')
})

test('DNS rebinding: /status, /info, /metrics and the admin API refuse a foreign Host on a loopback connection; /health answers', async (t) => {
  const gateway = await startGateway(t, { servers: [], admin: { apiKey: 'admin-key-0123456789' } })
  const rebound = (path: string) => new Promise<number>((resolve, reject) => {
    const req = http.request(gateway.base + path, { headers: { host: 'attacker.example.com', 'x-api-key': 'admin-key-0123456789' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
  for (const path of ['/status', '/info', '/metrics', '/admin/servers']) t.equal(await rebound(path), 403, `${path}: 403`)
  t.equal(await rebound('/health'), 503, '/health is not guarded (no upstream: 503)')
})
