// Bench helper: the child processes of a bench run. Each is started with an IPC channel (so it can report its port,
// and so an orphaned child notices its parent is gone), keeps the tail of its output for error messages, and is
// stopped by PID: SIGTERM, then SIGKILL if it has not exited within the grace period.
import { fork } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

const OUTPUT_TAIL = 4000
const STOP_GRACE = 5000
const KILL_WAIT = 2000
const EXIT_WITH_PARENT = fileURLToPath(new URL('./exit-with-parent.mjs', import.meta.url))

export class Child {
  #output = ''
  #exit
  #message

  /** `nodeArgs`: flags for the child's node (a profile: `--cpu-prof --cpu-prof-dir=…`); `env`: variables added to ours. */
  constructor (name, file, args, { preload = false, nodeArgs = [], env = {} } = {}) {
    this.name = name
    this.process = fork(file, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [...(preload ? ['--import', EXIT_WITH_PARENT] : []), ...nodeArgs]
    })
    this.pid = this.process.pid
    this.exitStatus = undefined
    const keep = (chunk) => { this.#output = (this.#output + chunk).slice(-OUTPUT_TAIL) }
    this.process.stdout.setEncoding('utf8').on('data', keep)
    this.process.stderr.setEncoding('utf8').on('data', keep)
    this.#exit = new Promise((resolve) => {
      this.process.once('close', (code, signal) => {
        this.exitStatus = signal ?? code
        resolve()
      })
    })
    // Listened to from the start: a child may report before anyone asks.
    this.#message = new Promise((resolve, reject) => {
      this.process.once('message', resolve)
      this.#exit.then(() => reject(new Error(`${this.name} exited before it was ready: ${this.describe()}`)))
    })
    this.#message.catch(() => {})
    // A spawn failure also emits 'close'; this keeps it from becoming an uncaught 'error'.
    this.process.on('error', (err) => keep(`[${err.message}]\n`))
  }

  get exited () {
    return this.exitStatus !== undefined
  }

  /** What the child printed last, for an error message that says why it failed. */
  describe () {
    const status = this.exited ? `exited (${this.exitStatus})` : 'running'
    const output = this.#output.trim()
    return `${this.name} (pid ${this.pid}) ${status}${output === '' ? ', no output' : `; its last output:\n${output}`}`
  }

  /** Resolves the first message the child sends over IPC; rejects if it exits first or takes longer than `ms`. */
  firstMessage (ms) {
    let timer
    return Promise.race([
      this.#message,
      new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.name} did not report ready within ${ms} ms: ${this.describe()}`)), ms)
      })
    ]).finally(() => clearTimeout(timer))
  }

  async stop () {
    if (this.exited) return
    signal(this.pid, 'SIGTERM')
    if (await this.#exitedWithin(STOP_GRACE)) return
    signal(this.pid, 'SIGKILL')
    if (!await this.#exitedWithin(KILL_WAIT)) throw new Error(`${this.name} (pid ${this.pid}) survived SIGKILL`)
  }

  #exitedWithin (ms) {
    let timer
    return Promise.race([
      this.#exit.then(() => true),
      new Promise((resolve) => { timer = setTimeout(resolve, ms, false) })
    ]).finally(() => clearTimeout(timer))
  }
}

function signal (pid, name) {
  try {
    process.kill(pid, name)
  } catch (err) {
    if (err.code !== 'ESRCH') throw err // ESRCH: it exited in the meantime
  }
}

/**
 * A port that was free a moment ago, for a child that cannot report the port it bound (the gateway CLI logs it only
 * at level info). Another process could take it in between; the child then fails to start, loudly.
 */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}
