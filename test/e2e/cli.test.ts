import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { EVERYTHING, freePort, groupMembers, waitFor } from '../helper.js'

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
