import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { EVERYTHING, freePort, groupMembers, waitFor } from '../helper.js'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'

/**
 * The standalone gateway as users run it: the `mcp-gateway` CLI in its own process. An invalid config exits 1
 * with a message naming the field and never listens; SIGTERM lets in-flight calls finish, stops every stdio server
 * (and anything they started) and exits 0.
 */

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
const TS_LOADER = new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href

interface Run {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

function runCli (args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [`--import=${TS_LOADER}`, CLI, ...args], {
    env: { ...process.env, PORT: '', HOST: '', LOG_LEVEL: '', GATEWAY_CONFIG: '', ADMIN_API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

async function tempConfig (t: { teardown (fn: () => unknown): void }, config: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'gateway.json')
  await writeFile(file, typeof config === 'string' ? config : JSON.stringify(config))
  return file
}

function isListening (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

test('an invalid config exits 1, names every field at fault, and never listens', async (t) => {
  const port = await freePort()
  const file = await tempConfig(t, {
    port,
    prefixMode: 'sometimes',
    servers: [{ id: 'a', url: 'ftp://example.com', extra: true }],
    mcpServers: { b: { command: 'x', autoApprove: [] } }
  })
  const run = runCli(['--config', file])
  t.equal(await run.exited, 1)
  const stderr = run.stderr()
  t.match(stderr, /MCPGW_ERR_CONFIG_INVALID|Invalid configuration/)
  t.match(stderr, /prefixMode: must be one of "always", "conditional", "never"/)
  t.match(stderr, /servers\[0\]: unknown key "extra"/)
  t.match(stderr, /mcpServers\.b: unknown key "autoApprove"/)
  t.notOk(await isListening(port), 'nothing listens')
})

test('a missing config file exits 1 with a message', async (t) => {
  const missing = runCli(['--config', '/nonexistent/gateway.json'])
  t.equal(await missing.exited, 1)
  t.match(missing.stderr(), /Cannot read config file \/nonexistent\/gateway.json: no such file/)
})

test('SIGTERM finishes in-flight calls, stops stdio servers and their children, and exits 0', async (t) => {
  const port = await freePort()
  const file = await tempConfig(t, {
    port,
    logLevel: 'info',
    shutdownTimeout: 15_000,
    servers: [
      // A shell that stays the parent of the server: the gateway must stop the whole process group.
      { id: 'everything', command: '/bin/sh', args: ['-c', `"${process.execPath}" "${EVERYTHING}" stdio; echo exited >&2`] }
    ]
  })
  const run = runCli(['--config', file])
  t.teardown(() => { run.child.kill('SIGKILL') })
  const base = `http://127.0.0.1:${port}`
  await waitFor('the gateway to be ready', () => run.stdout().includes('gateway ready'), 30_000)
  const status = await (await fetch(base + '/status')).json() as { servers: Array<{ pid?: number, state: string }> }
  const pid = status.servers[0]?.pid as number
  t.equal(status.servers[0]?.state, 'up')
  t.ok(pid > 0, 'the stdio server has a pid')
  await waitFor('the server process under the shell', () => groupMembers(pid).length >= 2)

  const call = fetch(base + '/mcp/tools/call', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'everything__trigger-long-running-operation', arguments: { duration: 2, steps: 2 } })
  })
  await new Promise(resolve => setTimeout(resolve, 300))
  run.child.kill('SIGTERM')
  const answer = await call
  t.equal(answer.status, 200, 'the call in flight when SIGTERM arrived completed')
  t.match(await answer.json(), { content: [{ type: 'text', text: /Long running operation completed/ }] })
  t.equal(await run.exited, 0, 'exit code 0')
  t.same(groupMembers(pid), [], 'no process of the stdio server\'s group survives the gateway')
  t.notOk(await isListening(port), 'the port is released')
})

test('SIGTERM with shutdownDelay: readiness answers 503 first while calls are still served, then the process exits', async (t) => {
  const port = await freePort()
  const file = await tempConfig(t, { port, logLevel: 'info', shutdownDelay: 1500, servers: [] })
  const run = runCli(['--config', file])
  t.teardown(() => { run.child.kill('SIGKILL') })
  const base = `http://127.0.0.1:${port}`
  await waitFor('the gateway to be ready', () => run.stdout().includes('gateway ready'), 30_000)
  t.equal((await fetch(base + '/health/live')).status, 200, 'live with no upstream at all')
  t.equal((await fetch(base + '/health')).status, 503, '/health: no upstream is up')
  const ready = await fetch(base + '/health/ready')
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ok' })
  run.child.kill('SIGTERM')
  await waitFor('readiness to turn', async () => (await fetch(base + '/health/ready')).status === 503)
  t.same(await (await fetch(base + '/health/ready')).json(), { status: 'draining' })
  const list = await fetch(base + '/mcp/tools/list', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(list.status, 200, 'requests are still served during the delay')
  t.equal((await fetch(base + '/health/live')).status, 200, 'and the process is live')
  t.equal(await run.exited, 0, 'then it exits 0')
  t.match(run.stdout(), /"delay":1500,"msg":"shutting down"/)
})

test('`npm start` (the README command): a SIGTERM sent to npm reaches the gateway, which shuts down and frees its port', async (t) => {
  const port = await freePort()
  const file = await tempConfig(t, { port, logLevel: 'info', servers: [] })
  const npm = spawn('npm', ['start'], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env: { ...process.env, GATEWAY_CONFIG: file, PORT: '', HOST: '', LOG_LEVEL: '', ADMIN_API_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  npm.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  npm.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)))
  t.teardown(() => { npm.kill('SIGKILL') })
  // npm start compiles first (prestart: tsc --incremental).
  await waitFor('the gateway under npm to be ready', () => output.includes('gateway ready'), 90_000)
  const gatewayPid = (JSON.parse(output.split('\n').find(line => line.includes('gateway ready')) ?? '{}') as { pid?: number }).pid as number
  t.ok(gatewayPid > 0 && gatewayPid !== npm.pid, 'the gateway is a process of its own under npm')
  // Should the signal not reach it, the test must not leave it running.
  t.teardown(() => { try { process.kill(gatewayPid, 'SIGKILL') } catch {} })
  npm.kill('SIGTERM')
  await exited
  await waitFor('the gateway to exit', () => { try { process.kill(gatewayPid, 0); return false } catch { return true } })
  t.match(output, /"signal":"SIGTERM".*"msg":"shutting down"/, 'the gateway received the signal and shut down')
  t.notOk(await isListening(port), 'the port is released')
})

test('accessLog and logFile: one line per call, in stdout and in a rolling file (pino-roll)', async (t) => {
  const upstream = await startPlainServer(t, 'files')
  const port = await freePort()
  const file = await tempConfig(t, {})
  const logDir = await mkdtemp(join(tmpdir(), 'mcp-gateway-logs-'))
  t.teardown(() => rm(logDir, { recursive: true, force: true }))
  const logPath = join(logDir, 'nested', 'gateway.log')
  await writeFile(file, JSON.stringify({ port, accessLog: true, logFile: { path: logPath, size: '1m', keep: 2 }, servers: [{ id: 'files', url: upstream.url }] }))
  const run = runCli(['--config', file])
  t.teardown(() => { run.child.kill('SIGKILL') })
  await waitFor('the gateway to listen', () => isListening(port), 20_000)
  await waitFor('the upstream connected', async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, 20_000)
  const res = await fetch(`http://127.0.0.1:${port}/mcp/tools/call`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'files__read', arguments: {} }) })
  t.equal(res.status, 200)
  await waitFor('the access line on stdout', () => run.stdout().includes('"component":"access"'))
  const line = JSON.parse(run.stdout().split('\n').find(l => l.includes('"component":"access"')) as string)
  t.match(line, { msg: 'call', principal: null, method: 'tools/call', name: 'files__read', service: 'files', upstream: 'files', outcome: 'success', ms: Number })
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0)
  const files = await readdir(join(logDir, 'nested'))
  t.same(files, ['gateway.1.log'], 'pino-roll numbers the files before the extension')
  const written = await readFile(join(logDir, 'nested', 'gateway.1.log'), 'utf8')
  t.match(written, /"component":"access".*"name":"files__read"/, 'the same line in the file')
  t.match(written, /gateway ready/)
})
