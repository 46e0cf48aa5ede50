// Bench helper: how the bench's fixture upstreams write their JSON-RPC answers — prebuilt text, no serializer on the
// hot path, so the fixture costs as little as possible next to what is measured.

export function result (id, json) {
  return '{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"result":' + json + '}'
}

export function error (id, code, text) {
  return '{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"error":{"code":' + code + ',"message":' + JSON.stringify(text) + '}}'
}

// setHeader + end(body), not writeHead: Node then sends a Content-Length instead of a chunked body.
export function send (res, status, body) {
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.end(body)
}

/** The one JSON-RPC message a POST carries, or undefined once a 400 has answered a body that is not one. */
export function readMessage (res, body) {
  let message
  try {
    message = JSON.parse(body)
  } catch {
    send(res, 400, error(null, -32700, 'Parse error'))
    return undefined
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    send(res, 400, error(null, -32600, 'Invalid Request: one JSON-RPC message per POST'))
    return undefined
  }
  return message
}

/** The whole body of a request, as text, to `done`. */
export function readBody (req, done) {
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk) => { body += chunk })
  req.on('end', () => done(body))
}
