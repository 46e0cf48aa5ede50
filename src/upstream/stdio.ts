import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { UpstreamDefinition } from '../config/types.js'
import { ERR_UPSTREAM_CLOSED } from '../errors.js'
import type { Logger } from '../logger.js'
import { LineSplitter } from './line-splitter.js'
import type { Pending } from './pending.js'
import { UpstreamSession } from './session.js'

/**
 * The stdio transport: one child process is one MCP session, newline-delimited JSON-RPC on stdin/stdout, stderr
 * to the log. The child leads its own process group so that `npx`-style wrappers and their children stop together;
 * shutdown closes stdin, then sends SIGTERM, then SIGKILL. Whatever is still running when the gateway process exits
 * is killed synchronously, so no server outlives the gateway.
 */

/** Passed through from the gateway's environment (as MCP hosts do); everything else comes from `env`. */
const INHERITED_ENV = [
  'HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ',
  'NODE_EXTRA_CA_CERTS', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'
]

const STDERR_TAIL_LINES = 5
/** Longest stderr line logged (characters); a longer one is cut, so a server writing without newlines costs nothing. */
const STDERR_LINE_LIMIT = 16 * 1024

export interface StdioOptions {
  /** Each shutdown step (stdin closed, SIGTERM) waits this long before the next. */
  stopGrace: number
}

const liveGroups = new Set<number>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const pid of liveGroups) killGroup(pid, 'SIGKILL')
  })
}

function killGroup (pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // The group is already gone.
  }
}

export class StdioSession extends UpstreamSession {
  readonly child: ChildProcessWithoutNullStreams
  /** Resolves when the process has exited, with the reason. */
  readonly exited: Promise<string>
  #lines: LineSplitter | undefined
  #stderrLines: LineSplitter | undefined
  readonly #stderrTail: string[] = []
  #stopping: Promise<void> | undefined

  constructor (readonly definition: UpstreamDefinition, private readonly log: Logger, private readonly options: StdioOptions) {
    super(definition.id)
    installExitHook()
    const env: Record<string, string> = {}
    for (const key of INHERITED_ENV) {
      const value = process.env[key]
      if (value !== undefined) env[key] = value
    }
    Object.assign(env, definition.env)
    this.child = spawn(definition.command as string, definition.args as string[], {
      env,
      cwd: definition.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      windowsHide: true
    })
    const pid = this.child.pid
    if (pid !== undefined) liveGroups.add(pid)
    this.child.stdout.setEncoding('utf8')
    this.child.stderr.setEncoding('utf8')
    this.child.stdout.on('data', (chunk: string) => this.#onStdout(chunk))
    this.child.stderr.on('data', (chunk: string) => this.#onStderr(chunk))
    this.child.stdin.on('error', () => {}) // EPIPE when the child dies first: reported by 'exit'
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err: NodeJS.ErrnoException) => {
        const reason = err.code !== 'ENOENT'
          ? `cannot start ${JSON.stringify(definition.command)}: ${err.message}`
          : definition.cwd !== undefined && !existsSync(definition.cwd)
            ? `cannot start ${JSON.stringify(definition.command)}: its working directory ${JSON.stringify(definition.cwd)} does not exist (check cwd)`
            : `cannot start ${JSON.stringify(definition.command)}: command not found (check command and PATH)`
        this.#exit(reason, pid)
        resolve(reason)
      })
      this.child.once('exit', (code, signal) => {
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`
        const tail = this.#stderrTail.length > 0 ? ` (stderr: ${this.#stderrTail.join(' | ')})` : ''
        const reason = `process ${how}${code !== 0 && signal === null ? tail : ''}`
        this.#exit(reason, pid)
        resolve(reason)
      })
    })
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  protected transmit (message: string, _pending: Pending | undefined): Promise<void> {
    if (this.closed || !this.child.stdin.writable) {
      return Promise.reject(new ERR_UPSTREAM_CLOSED(this.serverId, this.closedReason ?? 'stdin is closed'))
    }
    this.child.stdin.write(message + '\n')
    return Promise.resolve()
  }

  /** Stops the process: stdin closed → SIGTERM → SIGKILL, `stopGrace` apart. Resolves once it has exited. */
  close (reason = 'stopped by the gateway'): Promise<void> {
    this.#stopping ??= this.#stop(reason)
    return this.#stopping
  }

  async #stop (reason: string): Promise<void> {
    this.failAll(reason)
    const pid = this.child.pid
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.stdin.end()
    if (await this.#exitsWithin(this.options.stopGrace)) return
    killGroup(pid, 'SIGTERM')
    if (await this.#exitsWithin(this.options.stopGrace)) return
    killGroup(pid, 'SIGKILL')
    await this.exited
  }

  #exitsWithin (ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      this.exited.then(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  #exit (reason: string, pid: number | undefined): void {
    if (pid !== undefined) {
      // Children the server left behind in its group (an npx wrapper's node process) go with it.
      killGroup(pid, 'SIGTERM')
      liveGroups.delete(pid)
    }
    this.failAll(reason)
  }

  #onStdout (chunk: string): void {
    this.#lines ??= new LineSplitter((line) => this.#line(line), this.maxMessageLength, (start) => {
      this.log.warn({ start, limit: this.maxMessageLength }, 'upstream wrote a line longer than limits.maxUpstreamMessage to stdout; skipped')
    })
    this.#lines.push(chunk)
  }

  #line (raw: string): void {
    const line = raw.trim()
    if (line.length === 0) return
    try {
      this.receiveText(line)
    } catch (err) {
      // Nothing the server writes may stop the gateway: a bad line is logged and skipped.
      if (err instanceof SyntaxError) this.log.warn({ line: line.slice(0, 500) }, 'upstream wrote a line to stdout that is not JSON-RPC; ignored')
      else this.log.warn({ err: (err as Error).message, line: line.slice(0, 200) }, 'upstream wrote a message the gateway refused; ignored')
    }
  }

  #onStderr (chunk: string): void {
    this.#stderrLines ??= new LineSplitter((raw) => {
      const line = raw.trimEnd()
      if (line.length === 0) return
      this.#stderrTail.push(line.slice(0, 300))
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift()
      this.log.info({ stderr: line }, 'upstream stderr')
    }, STDERR_LINE_LIMIT, (start) => {
      this.log.info({ stderr: start + '…' }, 'upstream stderr (a line longer than the gateway logs; the rest skipped)')
    })
    this.#stderrLines.push(chunk)
  }
}
