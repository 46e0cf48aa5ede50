import { ERR_UPSTREAM_UNAVAILABLE } from './errors.js'
import type { Relay } from './relay.js'
import type { ClientSession } from './sessions.js'
import type { UpstreamConnection } from './upstream/connection.js'
import { HttpSession } from './upstream/http.js'
import { UpstreamSession } from './upstream/session.js'

/**
 * Which upstream session serves a client's request on one upstream: the shared one (the gateway's own session,
 * which every client without state of its own uses) or one opened for the client alone, declaring upstream what
 * the client declared. Client sessions are opened on first use, restored after the upstream forgot them, and closed
 * when the client or the upstream goes away.
 */

/** Client capabilities passed on to a client's own upstream sessions (tasks are not mapped, so not declared). */
const PASSED_CAPABILITIES = ['roots', 'sampling', 'elicitation']

export interface SessionBrokerOptions {
  relay: Relay
  /** Called when a client's own upstream session opened or came back empty: its level and subscriptions there. */
  restore: (client: ClientSession, connection: UpstreamConnection, upstream: UpstreamSession) => Promise<void>
}

export class SessionBroker {
  constructor (private readonly options: SessionBrokerOptions) {}

  /**
   * The upstream session a client's calls use on this upstream: its own (opened on first use) or the shared one.
   * Once open it is returned as is, not as a promise, so a call on it costs no extra turn of the event loop.
   */
  sessionFor (client: ClientSession | undefined, connection: UpstreamConnection): Promise<UpstreamSession> | UpstreamSession {
    if (client === undefined || connection.shared) return shared(connection)
    const entry = client.upstreams.get(connection.id)
    // A session the upstream ended (its stream or socket closed) is replaced by a new one, not reused.
    if (entry !== undefined && !(entry instanceof UpstreamSession && entry.closed)) return entry
    return this.#open(client, connection)
  }

  /** The upstream sessions already open for a client. */
  openSessionsOf (client: ClientSession): UpstreamSession[] {
    const open: UpstreamSession[] = []
    for (const entry of client.upstreams.values()) if (entry instanceof UpstreamSession && !entry.closed) open.push(entry)
    return open
  }

  /** A client's own upstream session that closed is forgotten, so its next call opens a new one. */
  dropClosed (client: ClientSession | undefined, connection: UpstreamConnection): void {
    const entry = client?.upstreams.get(connection.id)
    if (entry === undefined || entry instanceof Promise) return
    if (entry.closed && entry !== connection.control) client?.upstreams.delete(connection.id)
  }

  /** The client session ended: its own upstream sessions close. */
  clientEnded (client: ClientSession, connection: (id: string) => UpstreamConnection | undefined): void {
    for (const [id, entry] of client.upstreams) {
      const control = connection(id)?.control
      Promise.resolve(entry).then((upstream) => {
        if (upstream !== control) return upstream.close('the client session ended')
      }, () => {}).catch(() => {})
    }
    client.upstreams.clear()
  }

  /** The upstream is gone: every client's session there closes. */
  connectionRemoved (id: string, clients: Iterable<ClientSession>): void {
    for (const client of clients) {
      const entry = client.upstreams.get(id)
      if (entry === undefined) continue
      client.upstreams.delete(id)
      Promise.resolve(entry).then(u => u.close('the upstream was removed'), () => {}).catch(() => {})
    }
  }

  #open (client: ClientSession, connection: UpstreamConnection): Promise<UpstreamSession> {
    const init = client.init
    const capabilities: Record<string, unknown> = {}
    for (const name of PASSED_CAPABILITIES) if (init?.capabilities[name] !== undefined) capabilities[name] = init.capabilities[name]
    const definition = connection.definition
    const opening: Promise<UpstreamSession> = connection.openSession({
      capabilities,
      clientInfo: init?.clientInfo ?? { name: 'unknown-client', version: '0.0.0' },
      protocolVersion: client.protocolVersion
    }, this.options.relay.forClient(client, definition.service, definition.timeout)).then(async (upstream) => {
      if (upstream instanceof HttpSession) {
        // A forgotten session comes back empty: the client's level and subscriptions are set again.
        upstream.onReinitialized = () => { this.options.restore(client, connection, upstream).catch(() => {}) }
      }
      await this.options.restore(client, connection, upstream)
      if (client.closed) upstream.close('the client session ended').catch(() => {})
      else if (client.upstreams.get(connection.id) === opening) client.upstreams.set(connection.id, upstream)
      return upstream
    }, (err: unknown) => {
      if (client.upstreams.get(connection.id) === opening) client.upstreams.delete(connection.id)
      throw err
    })
    client.upstreams.set(connection.id, opening)
    return opening
  }
}

/** The session every client shares on this upstream, while it is up. */
function shared (connection: UpstreamConnection): UpstreamSession | Promise<UpstreamSession> {
  const control = connection.control
  if (control === undefined || connection.state !== 'up') {
    return Promise.reject(new ERR_UPSTREAM_UNAVAILABLE(connection.definition.service, `upstream ${connection.id} is ${connection.state}`))
  }
  return control
}
