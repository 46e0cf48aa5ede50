import type { WebSocket } from 'ws'
import type { JsonRpcMessage } from '../../schemas/jsonrpc.js'
import { ERR_INVALID_REQUEST, RpcCode, toRpcError } from '../errors.js'
import type { Logger } from '../logger.js'
import { LATEST_PROTOCOL_VERSION } from '../protocol.js'
import { resultValue } from '../raw-result.js'
import type { ClientChannel, ClientSession } from '../client-session.js'
import { bodyMessages, InvalidMessage, invalidMessage, type MessageLimits, parseMessageText } from './message.js'
import { errorAnswer, errorText, type HttpAnswer, receiveMessage } from './serve.js'
import type { ClientEndpoint, Peer } from './endpoint.js'

/**
 * MCP over WebSocket, server side: one socket is one session, one JSON-RPC message per text frame (the framing the
 * SDK's WebSocket client uses, subprotocol `mcp`). For clients without an MCP SDK the same socket also takes a
 * simple envelope that addresses one upstream server by id, with no initialize needed:
 * `{"type":"message","target":"<server id>","id"?:…,"data":{"method","params"}}` is answered with
 * `{"type":"response","target","id"?,"data":<result or {"error":{code,message}}>}`.
 */

/** The WebSocket subprotocol of MCP (SEP-1288; what the SDK's WebSocket transport offers). */
export const MCP_SUBPROTOCOL = 'mcp'

/** Every frame to the client goes through here, so a client that stops reading cannot make the gateway hold it all. */
class WebSocketChannel implements ClientChannel {
  readonly transport = 'websocket'

  constructor (private readonly socket: WebSocket, private readonly options: WebSocketOptions) {}

  get open (): boolean {
    return this.socket.readyState === 1
  }

  send (message: string): void {
    if (this.socket.readyState !== 1) return
    if (this.socket.bufferedAmount > this.options.maxClientBuffer) {
      this.options.log.info({ buffered: this.socket.bufferedAmount, limit: this.options.maxClientBuffer },
        'a client stopped reading its WebSocket; closed it (limits.maxClientBuffer)')
      this.socket.terminate()
      return
    }
    this.socket.send(message)
  }

  close (): void {
    if (this.socket.readyState <= 1) this.socket.close(1001, 'the gateway ended the session')
  }
}

interface Envelope {
  type: 'message'
  target: string
  id?: string | number
  data: { method: string, params?: Record<string, unknown> }
}

export interface WebSocketOptions {
  /** Sockets that do not answer a ping within this period are closed (dead peers behind NATs and proxies). */
  pingInterval: number
  /** Bounds of what a client may send. */
  limits: MessageLimits
  /** Bytes sent to a socket and not yet taken by the client; past it the socket is closed (limits.maxClientBuffer). */
  maxClientBuffer: number
  log: Logger
}

export class WebSocketTransport {
  constructor (private readonly endpoint: ClientEndpoint, private readonly options: WebSocketOptions) {}

  /**
   * The answer that refuses an upgrade request, if it must be refused: a client that offers subprotocols but not
   * "mcp" speaks something else. A client that offers none (a script using the envelope) is welcome.
   */
  refuseUpgrade (offered: string | undefined): HttpAnswer | undefined {
    if (offered === undefined || offered.trim() === '') return undefined
    if (offered.split(',').some(p => p.trim() === MCP_SUBPROTOCOL)) return undefined
    return errorAnswer(new ERR_INVALID_REQUEST(`the WebSocket subprotocol must be "${MCP_SUBPROTOCOL}"; offered: ${JSON.stringify(offered.slice(0, 100))}`))
  }

  accept (socket: WebSocket, peer: Peer): void {
    let session: ClientSession
    try {
      session = this.endpoint.openSession(new WebSocketChannel(socket, this.options), peer)
    } catch (err) {
      socket.close(1013, (err as Error).message.slice(0, 120))
      return
    }
    let alive = true
    const heartbeat = setInterval(() => {
      if (!alive) {
        socket.terminate()
        return
      }
      alive = false
      socket.ping()
    }, this.options.pingInterval)
    heartbeat.unref()
    socket.on('pong', () => { alive = true })
    socket.on('message', (data, isBinary) => {
      alive = true
      try {
        this.#frame(session, socket, data as Buffer, isBinary)
      } catch (err) {
        // Never thrown back into ws (that would end the process): the client gets an internal error instead.
        session.channel.send(errorText(null, err))
      }
    })
    socket.on('close', () => {
      clearInterval(heartbeat)
      this.endpoint.endSession(session.id)
    })
    socket.on('error', () => socket.terminate())
  }

  #frame (session: ClientSession, socket: WebSocket, data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      session.channel.send(errorText(null, new ERR_INVALID_REQUEST('binary frames carry no MCP messages; send JSON text')))
      return
    }
    const parsed = parseMessageText(data.toString('utf8'), this.options.limits)
    // An envelope is an object with a `type` and no `jsonrpc` (a JSON-RPC message may carry other members).
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && !(parsed instanceof InvalidMessage) &&
      'type' in parsed && !('jsonrpc' in parsed)) {
      this.#envelope(session, socket, parsed as Record<string, unknown>)
      return
    }
    const read = bodyMessages(parsed, this.options.limits)
    if (read instanceof InvalidMessage) {
      session.channel.send(errorText(read.id, read.error))
      return
    }
    for (const message of read.messages) {
      const invalid = invalidMessage(message)
      if (invalid !== undefined) session.channel.send(errorText(invalid.id, invalid.error))
      else receiveMessage(this.endpoint, session, message as JsonRpcMessage)
    }
  }

  #envelope (session: ClientSession, socket: WebSocket, message: Record<string, unknown>): void {
    const id = typeof message.id === 'string' || Number.isSafeInteger(message.id) ? message.id : undefined
    const reply = (data: unknown) => {
      if (socket.readyState !== 1) return
      try {
        session.channel.send(JSON.stringify({ type: 'response', ...(typeof message.target === 'string' ? { target: message.target } : {}), ...(id !== undefined ? { id } : {}), data }))
      } catch {
        session.channel.send(JSON.stringify({ type: 'response', data: { error: { code: RpcCode.InternalError, message: 'Internal error: the answer could not be written' } } }))
      }
    }
    const problem = envelopeProblem(message)
    if (problem !== undefined) {
      reply({ error: toRpcError(new ERR_INVALID_REQUEST(problem)) })
      return
    }
    const envelope = message as unknown as Envelope
    // Envelope clients do not initialize: the session is set up for them on their first message.
    if (!session.negotiated) {
      this.endpoint.initialize(session, { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'websocket-envelope', version: '1.0.0' } })
      this.endpoint.notification(session, 'notifications/initialized', undefined)
    }
    this.endpoint.requestUpstream(session, envelope.target, envelope.data.method, envelope.data.params)
      .then(result => resultValue(result), (err: unknown) => ({ error: toRpcError(err) }))
      .then(reply, (err: unknown) => reply({ error: toRpcError(err) }))
  }
}

/** What is wrong with an envelope, if anything: `{"type":"message","target":"<server id>","id"?,"data":{"method","params"?}}`. */
function envelopeProblem (message: Record<string, unknown>): string | undefined {
  const usage = 'an envelope is {"type":"message","target":"<server id>","id"?:<string or integer>,"data":{"method":"…","params"?:{…}}}'
  const data = message.data as Record<string, unknown> | undefined
  if (message.type !== 'message' || typeof message.target !== 'string' || message.target.length > 200) return usage
  if (message.id !== undefined && typeof message.id !== 'string' && !Number.isSafeInteger(message.id)) return 'id must be a string or an integer; ' + usage
  if (data === null || typeof data !== 'object' || Array.isArray(data) || typeof data.method !== 'string' || data.method === '') return usage
  const params = data.params
  if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) return 'data.params must be an object; ' + usage
  // The envelope's requests travel on the session every client shares: what would change that session for everyone
  // is the gateway's to do (log levels and subscriptions belong on an MCP session of the client's own).
  if (SESSION_METHODS.has(data.method) || data.method.startsWith('notifications/')) {
    return `${JSON.stringify(data.method.slice(0, 100))} cannot be sent in an envelope: the gateway manages upstream sessions; use MCP messages on this socket for it`
  }
  return undefined
}

/** Methods that set up or change an upstream session. */
const SESSION_METHODS = new Set(['initialize', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe'])
