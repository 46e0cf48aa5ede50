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
