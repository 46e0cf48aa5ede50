import type { JsonRpcId, Params } from '../../schemas/jsonrpc.js'
import type { Cancellation } from '../cancellation.js'
import type { ClientChannel, ClientSession, Peer } from '../client-session.js'
import type { TraceCarrier } from '../tracing.js'

/**
 * What the client transports (Streamable HTTP, legacy SSE, WebSocket) need of the engine, and all they may call:
 * the engine implements it, the transports depend on it, and neither imports the other.
 */

/** Per request: which client request it answers, how it can be cancelled, the trace context its HTTP request carried. */
export interface RequestHandle {
  readonly cancel?: Cancellation | undefined
  readonly requestId: JsonRpcId
  readonly carrier?: TraceCarrier | undefined
}

export type { Peer }

export interface ClientEndpoint {
  /** A new client session reached through `channel`; throws a coded error when none can be opened. */
  openSession (channel: ClientChannel, peer: Peer): ClientSession
  /** The session with this id, if it is open and belongs to the peer's principal (another caller's is not found). */
  findSession (id: string, peer: Peer): ClientSession | undefined
  /** Negotiates the protocol version, records what the client declared, and returns the initialize result. */
  initialize (session: ClientSession, params: Params | undefined): Record<string, unknown>
  /** Serves one request; rejects with a coded error. `handle` is given for requests that reach an upstream. */
  request (session: ClientSession, method: string, params: Params | undefined, handle?: RequestHandle): Promise<unknown>
  /** A notification from the client. */
  notification (session: ClientSession, method: string, params: Params | undefined): void
  /** A request addressed to one upstream by id (the WebSocket envelope). */
  requestUpstream (session: ClientSession, upstreamId: string, method: string, params: Params | undefined): Promise<unknown>
  /** The client's stream (GET stream, SSE stream, socket) opened: what waits for it may now flow. */
  streamOpened (session: ClientSession): void
  /** Ends a session; false when there was none with this id. */
  endSession (id: string): boolean
}
