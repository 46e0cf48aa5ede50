import type { IncomingMessage } from 'node:http'
import WebSocket from 'ws'
import type { UpstreamDefinition } from '../config/types.js'
import { ERR_UPSTREAM_CLOSED, ERR_UPSTREAM_PROTOCOL, ERR_UPSTREAM_TIMEOUT } from '../errors.js'
import { httpStatusError } from './http-upstream.js'
import type { Pending } from './pending.js'
import { UpstreamSession } from './session.js'

/**
 * MCP over WebSocket (not a spec transport; the SDK's client and SEP-1288 agree on it): one socket is one session,
 * opened with subprotocol `mcp` and the upstream's headers on the upgrade request, and every text frame carries one
 * JSON-RPC message. There is nothing to share: each session has its own socket.
 */

const SUBPROTOCOL = 'mcp'
/** How long close() waits for the server to answer our close frame before cutting the connection. */
const CLOSE_TIMEOUT = 2000
const ERROR_BODY_LIMIT = 2048

export class WebSocketSession extends UpstreamSession {
  /** Resolves, with the reason, once the session is over: the socket closed or failed, or we closed it. */
  readonly ended: Promise<string>
  #onEnded!: (reason: string) => void
  #socket: WebSocket | undefined

  constructor (readonly definition: UpstreamDefinition) {
    super(definition.id)
    this.ended = new Promise((resolve) => { this.#onEnded = resolve })
  }

  protected transmit (message: string, _pending: Pending | undefined): Promise<void> {
    const socket = this.#socket
    if (this.closed || socket === undefined || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ERR_UPSTREAM_CLOSED(this.serverId, this.closedReason ?? 'the WebSocket is not open yet (initialize first)'))
    }
    return new Promise((resolve, reject) => {
      socket.send(message, (err) => err === undefined || err === null ? resolve() : reject(err))
    })
  }

  /** Closes the socket with 1000 (normal closure) and waits, briefly, for the server to close its side. */
  async close (reason = 'session closed'): Promise<void> {
    if (this.closed) return
    this.#end(reason)
    const socket = this.#socket
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.terminate(), CLOSE_TIMEOUT)
      socket.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
      socket.close(1000)
    })
  }

  protected override open (timeout: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.definition.url as string, SUBPROTOCOL, {
        headers: { ...this.definition.headers },
        perMessageDeflate: false,
        // A frame longer than this closes the socket (1009): the upstream broke the limit.
        maxPayload: this.maxMessageLength
      })
      this.#socket = socket
      let opened = false
      /** Why the socket is failing, when we learned it before ws reports its own error. */
      let failure: Error | undefined
      let lastError: Error | undefined
      const timer = setTimeout(() => {
        failure ??= new ERR_UPSTREAM_TIMEOUT(this.serverId, 'the WebSocket handshake', timeout)
        socket.terminate()
      }, timeout)
      socket.on('unexpected-response', (_req, res) => {
        readBody(res).then((text) => {
          failure ??= httpStatusError(this.serverId, res.statusCode ?? 0, text)
          socket.terminate()
        })
      })
      socket.on('error', (err) => { lastError = err })
      socket.once('open', () => {
        opened = true
        clearTimeout(timer)
        socket.on('message', (data, isBinary) => this.#message(data, isBinary))
        resolve()
      })
      socket.once('close', (code, reason) => {
        clearTimeout(timer)
        if (opened) {
          const text = reason.toString()
          this.#end(`the WebSocket closed with code ${code}${text === '' ? '' : ': ' + text}` +
            (lastError === undefined ? '' : ` (${lastError.message})`))
          return
        }
        const err = this.closed
          ? new ERR_UPSTREAM_CLOSED(this.serverId, this.closedReason as string)
          : failure ?? handshakeError(this.serverId, lastError)
        this.#end(err.message)
        reject(err)
      })
    })
  }

  #message (data: WebSocket.RawData, isBinary: boolean): void {
    if (this.closed) return
    if (isBinary) {
      this.#protocolError('sent a binary frame (MCP over WebSocket carries one JSON-RPC message per text frame)', 1003)
      return
    }
    const text = (data as Buffer).toString('utf8')
    try {
      this.receiveText(text)
    } catch (err) {
      this.#protocolError(err instanceof SyntaxError ? `sent a text frame that is not JSON: ${text.slice(0, 200)}` : (err as Error).message, 1007)
    }
  }

  /** The server broke the protocol: the session is over (with that reason), and so is the socket. */
  #protocolError (detail: string, code: number): void {
    this.#end(new ERR_UPSTREAM_PROTOCOL(this.serverId, detail).message)
    this.#socket?.close(code, 'protocol error')
  }

  #end (reason: string): void {
    this.failAll(reason)
    this.#onEnded(this.closedReason as string)
  }
}

function handshakeError (serverId: string, err: Error | undefined): Error {
  const message = err?.message ?? 'closed during the handshake'
  // ws checks the subprotocol itself ("Server sent no subprotocol", "… an invalid subprotocol").
  if (/subprotocol/i.test(message)) {
    return new ERR_UPSTREAM_PROTOCOL(serverId, `did not select the WebSocket subprotocol "${SUBPROTOCOL}" (${message}); ` +
      `an MCP WebSocket server must answer Sec-WebSocket-Protocol: ${SUBPROTOCOL}`)
  }
  return new ERR_UPSTREAM_CLOSED(serverId, `cannot open the WebSocket: ${message}`)
}

/** The start of a refused upgrade's body, as text. */
function readBody (res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      text += chunk
      if (text.length >= ERROR_BODY_LIMIT) res.destroy()
    })
    res.once('close', () => resolve(text.slice(0, ERROR_BODY_LIMIT)))
    res.once('error', () => {})
  })
}
