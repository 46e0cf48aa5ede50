import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { resolveConfig } from '../src/config/load.js'

/**
 * Shared test set-up: a gateway on a loopback port, SDK clients, and real upstreams (server-everything over stdio
 * and Streamable HTTP). Everything started here is torn down with the test that started it.
 */

type Test = { teardown (fn: () => unknown): void }

export const EVERYTHING = fileURLToPath(new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url))
export const LOOPBACK_ONLY = fileURLToPath(new URL('./fixtures/loopback-only.mjs', import.meta.url))

export interface Gateway {
  app: FastifyInstance
  /** http://127.0.0.1:PORT */
  base: string
  /** The MCP endpoint. */
  mcp: URL
}

/** A gateway built from a config-file-shaped object, listening on a free loopback port. */
export async function startGateway (t: Test, config: Record<string, unknown>): Promise<Gateway> {
  const app = await buildApp({
    config: resolveConfig({ metrics: { defaultMetrics: false }, ...config }, { envOverrides: false, source: 'test config' })
  }, { logger: false })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  return { app, base, mcp: new URL(base + '/mcp') }
}

/** An SDK client connected over Streamable HTTP. */
export async function connectClient (t: Test, url: URL, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'gateway-test', version: '1.0.0' }, { capabilities })
  await client.connect(new StreamableHTTPClientTransport(url))
  t.teardown(() => client.close())
  return client
}

/** server-everything over stdio, as a gateway server entry. */
export function everythingStdio (id = 'everything'): Record<string, unknown> {
  return { id, command: process.execPath, args: [EVERYTHING, 'stdio'] }
}

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface RunningServer {
  url: string
  child: ChildProcess
  stop (): Promise<void>
}

/** server-everything in Streamable HTTP mode, bound to loopback, on a free port (or the one given). */
export function startEverythingHttp (t: Test, port?: number): Promise<RunningServer> {
  return startEverything(t, 'streamableHttp', '/mcp', 'listening on port', port)
}

/**
 * server-everything in legacy HTTP+SSE mode, bound to loopback, on a free port: `url` is its SSE stream (GET /sse);
 * each GET is one session, whose endpoint event names `/message?sessionId=…`.
 */
export function startEverythingSse (t: Test): Promise<RunningServer> {
  return startEverything(t, 'sse', '/sse', 'running on port')
}

/** server-everything in one of its HTTP modes; ready once it prints `readyText` on stderr. */
async function startEverything (t: Test, mode: string, path: string, readyText: string, port?: number): Promise<RunningServer> {
  const chosen = port ?? await freePort()
  const child = spawn(process.execPath, ['--import', LOOPBACK_ONLY, EVERYTHING, mode], {
    env: { ...process.env, PORT: String(chosen) },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  const running: RunningServer = {
    url: `http://127.0.0.1:${chosen}${path}`,
    child,
    stop: () => stopChild(child)
  }
  t.teardown(() => running.stop())
  await new Promise<void>((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new Error(`server-everything (${mode}) did not start: ${text}`)), 20_000)
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      if (text.includes(readyText)) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server-everything (${mode}) exited with ${code}: ${text}`))
    })
  })
  child.stderr?.resume()
  return running
}

export function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const TS_LOADER = new URL('../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href

export interface CliGateway {
  /** http://127.0.0.1:PORT */
  base: string
  /** Everything it printed so far. */
  log: () => string
}

/**
 * The standalone gateway (the CLI, from source) in a process of its own, on a free port, with `config` written to a
 * file in `dir`; the environment's gateway variables cleared, `env` added. Resolves once /health answers.
 */
export async function startCliGateway (t: Test, dir: string, name: string, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<CliGateway> {
  const port = await freePort()
  const file = join(dir, `${name}.json`)
  await writeFile(file, JSON.stringify({ port, logLevel: 'info', servers: [], ...config }))
  const child = spawn(process.execPath, [`--import=${TS_LOADER}`, CLI, '--config', file], {
    env: { ...process.env, PORT: '', HOST: '', LOG_LEVEL: '', GATEWAY_CONFIG: '', ADMIN_API_KEY: '', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => stopChild(child))
  let log = ''
  child.stdout?.on('data', (chunk: Buffer) => { log += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { log += chunk.toString() })
  const base = `http://127.0.0.1:${port}`
  await waitFor(`gateway ${name}`, () => fetch(base + '/health').then(() => true, () => false), 30_000)
  return { base, log: () => log }
}

/** Polls until `check` is truthy; fails after `timeout` ms with `what`. */
export async function waitFor<T> (what: string, check: () => T | Promise<T>, timeout = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== null && value !== false) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Live processes in a process group, read from /proc (a stdio server and whatever it spawned). */
export function groupMembers (pgid: number): number[] {
  const members: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry))
    } catch {}
  }
  return members
}
