import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest } from '../../schemas/jsonrpc.js'
import { Cancellation } from '../cancellation.js'
import { ERR_INVALID_REQUEST, toRpcError } from '../errors.js'
import { errorMessage, isNotification, isRequest, isResponse, resultMessage } from '../jsonrpc.js'
import type { McpProxy } from '../proxy.js'
import { RawResult } from '../raw-result.js'
import type { ClientSession } from '../sessions.js'

/**
 * Serving client messages, the part every client transport shares: a request becomes its JSON-RPC answer text
 * (calls that reach an upstream can be cancelled), a notification or a response goes to the proxy or the session.
 * Transports decide only where the answer is written.
 */

/** Methods that reach an upstream: only they can be cancelled, report progress or make the upstream talk back. */
export const FORWARDED = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete'])

/** Serves one request and serializes its JSON-RPC answer; never rejects. */
export function serveRequest (proxy: McpProxy, session: ClientSession, request: JsonRpcRequest): Promise<string> {
  if (request.method === 'initialize') {
    try {
      return Promise.resolve(resultMessage(request.id, proxy.initialize(session, request.params)))
    } catch (err) {
      return Promise.resolve(errorMessage(request.id, toRpcError(err)))
    }
  }
  if (!FORWARDED.has(request.method)) {
    return proxy.request(session, request.method, request.params)
      .then(result => answerText(request.id, result), err => errorMessage(request.id, toRpcError(err)))
  }
  const cancel = new Cancellation()
  session.inFlight.set(request.id, cancel)
  const done = () => { if (session.inFlight.get(request.id) === cancel) session.inFlight.delete(request.id) }
  return proxy.request(session, request.method, request.params, { cancel, requestId: request.id }).then((result) => {
    done()
    return answerText(request.id, result)
  }, (err: unknown) => {
    done()
    return errorMessage(request.id, toRpcError(err))
  })
}

/**
 * One message on a transport with a single channel to the client (legacy SSE, WebSocket): requests are answered on
 * the channel, in the order they finish; notifications and responses are taken in.
 */
export function receiveMessage (proxy: McpProxy, session: ClientSession, message: JsonRpcMessage): void {
  session.lastSeen = Date.now()
  if (isRequest(message)) {
    serveRequest(proxy, session, message).then(answer => session.channel.send(answer))
  } else if (isNotification(message)) {
    proxy.notification(session, message.method, message.params)
  } else if (isResponse(message)) {
    session.answer(message.id, message.result, message.error)
  } else {
    const id = (message as { id?: JsonRpcId }).id ?? null
    session.channel.send(errorMessage(id, toRpcError(new ERR_INVALID_REQUEST('a message needs a method (request or notification) or a result or error (response)'))))
  }
}

/** The JSON-RPC response text: the upstream's own result text when it arrived as a RawResult. */
export function answerText (id: JsonRpcId, result: unknown): string {
  return result instanceof RawResult ? result.withId(id) : resultMessage(id, result)
}
