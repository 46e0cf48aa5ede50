import { Client, Pool } from 'undici'
import type { Dispatcher } from 'undici'
import type { UpstreamDefinition } from '../config/types.js'
import { ERR_UPSTREAM_CLOSED, ERR_UPSTREAM_HTTP } from '../errors.js'
import { nextTurn } from './session.js'

/**
 * The connections to one HTTP upstream, shared by every session on it (Streamable HTTP and legacy SSE): a pool for
 * requests, bounded by `maxConnections` and kept alive, and one connection per event stream. Created by the
 * upstream's connection, destroyed in `close`.
 */

const ERROR_BODY_LIMIT = 2048
/** Courtesy requests (session DELETEs) in flight per upstream (one: they reuse its keep-alive socket), and how many may wait. */
const COURTESY_CONCURRENCY = 1
const COURTESY_BACKLOG = 1000

export interface HttpUpstreamOptions {
  connectTimeout: number
  /** Delay before the GET stream is opened again after it dropped. */
  streamRetry: number
  /** Longest delay between attempts to open a GET stream that keeps failing. */
  streamRetryMax: number
}

export class HttpUpstream {
  /** Requests: bounded by `maxConnections`, kept alive. */
  readonly pool: Pool
  /** The connections of the event streams open now (see `stream`). */
  readonly #streams = new Set<Client>()
  readonly #origin: string
  readonly #connect: { timeout: number }
  readonly path: string
  /** The configured headers (the upstream's credentials), names lower-cased: every request carries them. */
  readonly headers: Readonly<Record<string, string>>
  /** What a Streamable HTTP POST carries. */
  readonly baseHeaders: Readonly<Record<string, string>>
  readonly #courtesyBacklog: Array<() => Promise<void>> = []
  #courtesyRunning = 0

  constructor (readonly definition: UpstreamDefinition, readonly options: HttpUpstreamOptions) {
    const url = new URL(definition.url as string)
    this.path = url.pathname + url.search
    const connect = { timeout: options.connectTimeout }
    this.pool = new Pool(url.origin, {
      connections: definition.maxConnections,
      pipelining: 1,
      // Idle sockets go after 30 s whatever the server's Keep-Alive hint says: a burst's extra sockets are given back.
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 30_000,
      connect
    })
    this.#origin = url.origin
    this.#connect = connect
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(definition.headers)) headers[name.toLowerCase()] = value
    this.headers = headers
    this.baseHeaders = { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  }

  /**
   * Runs a request that is only a courtesy (ending a session the server would expire anyway) a few at a time, so
   * closing thousands of client sessions at once does not open thousands of sockets; past a backlog it is skipped.
   * Never rejects.
   */
  courtesy (task: () => Promise<void>): Promise<void> {
    if (this.pool.destroyed || this.#courtesyBacklog.length >= COURTESY_BACKLOG) return Promise.resolve()
    return new Promise<void>((resolve) => {
      this.#courtesyBacklog.push(() => task().catch(() => {}).then(nextTurn).finally(() => {
        this.#courtesyRunning--
        resolve()
        this.#nextCourtesy()
      }))
      this.#nextCourtesy()
    })
  }

  #nextCourtesy (): void {
    while (this.#courtesyRunning < COURTESY_CONCURRENCY && this.#courtesyBacklog.length > 0) {
      this.#courtesyRunning++
      const next = this.#courtesyBacklog.shift() as () => Promise<void>
      next().catch(() => {})
    }
  }

  /**
   * A connection for one health check (a ping, the GET of healthCheck.path), never queued behind calls holding
   * every pooled connection: it closes once its request is answered (the caller closes it right after dispatching),
   * so an upstream keeps neither a socket nor a client object for its checks between them.
   */
  checkClient (): Client {
    return new Client(this.#origin, { pipelining: 1, connect: this.#connect })
  }

  /**
   * A long-lived GET (an event stream) on a connection of its own, closed when its body ends: streams never take
   * the request connections, and an upstream with no stream open holds nothing for them (a Pool would hold a
   * 2048-slot queue per upstream, 16 KB each at a thousand upstreams).
   */
  async stream (options: Omit<Dispatcher.RequestOptions, 'origin'>): Promise<Dispatcher.ResponseData> {
    if (this.pool.destroyed) throw new ERR_UPSTREAM_CLOSED(this.definition.id, 'the upstream was closed')
    const client = new Client(this.#origin, { pipelining: 1, connect: this.#connect })
    this.#streams.add(client)
    const release = () => {
      this.#streams.delete(client)
      client.destroy().catch(() => {})
    }
    try {
      const res = await client.request(options)
      res.body.once('close', release)
      return res
    } catch (err) {
      release()
      throw err
    }
  }

  async close (): Promise<void> {
    const streams = [...this.#streams]
    this.#streams.clear()
    await Promise.all([this.pool.destroy(), ...streams.map(c => c.destroy())])
  }
}

/**
 * MCPGW_ERR_UPSTREAM_HTTP for a failure status, with the server's error text (a JSON-RPC error body gives its
 * message). `upstreamStatus` keeps the status the upstream answered (the error's own `statusCode` is the gateway's).
 */
export function httpStatusError (serverId: string, status: number, text: string): ERR_UPSTREAM_HTTP {
  let detail = text.trim()
  try {
    const body = JSON.parse(text) as { error?: { message?: string } }
    if (typeof body.error?.message === 'string') detail = body.error.message
  } catch {}
  return new ERR_UPSTREAM_HTTP(serverId, status, detail === '' ? '(empty body)' : detail)
}

/** The start of an error answer's body, as text; the rest is not read. */
export async function readErrorBody (body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    chunks.push(chunk as Buffer)
    size += (chunk as Buffer).length
    if (size >= ERROR_BODY_LIMIT) break
  }
  return Buffer.concat(chunks).toString('utf8', 0, ERROR_BODY_LIMIT)
}
