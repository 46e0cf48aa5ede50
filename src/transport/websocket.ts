import type { WebSocket } from 'ws'
import type { JsonRpcMessage } from '../../schemas/jsonrpc.js'
import { ERR_INVALID_REQUEST, ERR_PARSE, toRpcError } from '../errors.js'
import { errorMessage } from '../jsonrpc.js'
import { LATEST_PROTOCOL_VERSION } from '../protocol.js'
import { resultValue } from '../raw-result.js'
import type { ClientChannel, ClientSession } from '../client-session.js'
import { receiveMessage } from './serve.js'
import type { ClientEndpoint, Peer } from './endpoint.js'

/**
 * MCP over WebSocket, server side: one socket is one session, one JSON-RPC message per text frame (the framing the
 * SDK's WebSocket client uses, subprotocol `mcp`). For clients without an MCP SDK the same socket also takes a
 * simple envelope that addresses one upstream server by id, with no initialize needed:
 * `{"type":"message","target":"<server id>","id"?:…,"data":{"method","params"}}` is answered with
 * `{"type":"response","target","id"?,"data":<result or {"error":{code,message}}>}`.
 */

class WebSocketChannel implements ClientChannel {
  constructor (private readonly socket: WebSocket) {}

  get open (): boolean {
    return this.socket.readyState === 1
  }

  send (message: string): void {
    if (this.socket.readyState === 1) this.socket.send(message)
  }

  close (): void {
    if (this.socket.readyState <= 1) this.socket.close(1001, 'the gateway ended the session')
  }
}

interface Envelope {
  type: 'message'
  target: string
  id?: unknown
  data: { method: string, params?: Record<string, unknown> }
}

export interface WebSocketOptions {
  /** Sockets that do not answer a ping within this period are closed (dead peers behind NATs and proxies). */
  pingInterval: number
}

export class WebSocketTransport {
  constructor (private readonly endpoint: ClientEndpoint, private readonly options: WebSocketOptions) {}

  accept (socket: WebSocket, peer: Peer): void {
    let session: ClientSession
    try {
      session = this.endpoint.openSession(new WebSocketChannel(socket), peer)
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
      this.#frame(session, socket, data as Buffer, isBinary)
    })
    socket.on('close', () => {
      clearInterval(heartbeat)
      this.endpoint.endSession(session.id)
    })
    socket.on('error', () => socket.terminate())
  }

  #frame (session: ClientSession, socket: WebSocket, data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      socket.send(errorMessage(null, toRpcError(new ERR_INVALID_REQUEST('binary frames carry no MCP messages; send JSON text'))))
      return
    }
    let message: unknown
    try {
      message = JSON.parse(data.toString('utf8'))
    } catch (err) {
      socket.send(errorMessage(null, toRpcError(new ERR_PARSE((err as Error).message))))
      return
    }
    if (message !== null && typeof message === 'object' && 'type' in message) {
      if (isEnvelope(message)) this.#envelope(session, socket, message)
      else {
        socket.send(JSON.stringify({
          type: 'response',
          data: { error: toRpcError(new ERR_INVALID_REQUEST('an envelope is {"type":"message","target":"<server id>","data":{"method":"…","params":{…}}}')) }
        }))
      }
      return
    }
    for (const one of Array.isArray(message) ? message : [message]) {
      if (one === null || typeof one !== 'object' || (one as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
        socket.send(errorMessage((one as { id?: string | number } | null)?.id ?? null,
          toRpcError(new ERR_INVALID_REQUEST('expected a JSON-RPC 2.0 message, or an envelope {"type":"message","target","data"}'))))
        continue
      }
      receiveMessage(this.endpoint, session, one as JsonRpcMessage)
    }
  }

  #envelope (session: ClientSession, socket: WebSocket, envelope: Envelope): void {
    // Envelope clients do not initialize: the session is set up for them on their first message.
    if (!session.negotiated) {
      this.endpoint.initialize(session, { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'websocket-envelope', version: '1.0.0' } })
      this.endpoint.notification(session, 'notifications/initialized', undefined)
    }
    const reply = (data: unknown) => {
      if (socket.readyState !== 1) return
      socket.send(JSON.stringify({ type: 'response', target: envelope.target, ...(envelope.id !== undefined ? { id: envelope.id } : {}), data }))
    }
    this.endpoint.requestUpstream(session, envelope.target, envelope.data.method, envelope.data.params)
      .then(result => reply(resultValue(result)), (err: unknown) => reply({ error: toRpcError(err) }))
  }
}

function isEnvelope (message: unknown): message is Envelope {
  if (message === null || typeof message !== 'object' || (message as { type?: unknown }).type === undefined) return false
  const m = message as Partial<Envelope>
  return m.type === 'message' && typeof m.target === 'string' && typeof m.data?.method === 'string'
}
