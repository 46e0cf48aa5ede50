// Bench helper: the MCP client side of a bench target — open a session (initialize, then notifications/initialized)
// and check that one tools/call answers the right result before and after the load. Every unexpected answer
// throws with what came back: a benchmark of a broken path measures nothing.
import { isDeepStrictEqual } from 'node:util'

export const PROTOCOL_VERSION = '2025-06-18'
export const ECHO_TEXT = 'hello'
const BASE_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const TIMEOUT = 10_000

/** The tools/call body the load sends; the same bytes every time, so the answer is too. */
export function callBody (tool) {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: { text: ECHO_TEXT } } })
}

/** Returns the headers every later request of the session carries. */
export async function openSession (name, url) {
  const init = await post(url, BASE_HEADERS, JSON.stringify({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench', version: '1.0.0' } }
  }))
  const message = expectJson(name, 'initialize', init)
  const sessionId = init.headers.get('mcp-session-id')
  if (message.id !== 0 || message.result?.protocolVersion !== PROTOCOL_VERSION || !sessionId) {
    throw new Error(`${name}: initialize answered ${init.status} ${init.text} (session id ${JSON.stringify(sessionId)})`)
  }
  const headers = { ...BASE_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL_VERSION }
  const initialized = await post(url, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  if (initialized.status !== 202) {
    throw new Error(`${name}: notifications/initialized answered ${initialized.status} ${initialized.text} (expected 202)`)
  }
  return headers
}

/** Sends the load's tools/call once and returns the exact body, which every answer under load must then equal. */
export async function checkCall (name, url, headers, body) {
  const answer = await post(url, headers, body)
  const message = expectJson(name, 'tools/call', answer)
  const expected = { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: ECHO_TEXT }] } }
  if (!isDeepStrictEqual(message, expected)) {
    throw new Error(`${name}: tools/call answered ${answer.text}, expected ${JSON.stringify(expected)}`)
  }
  return answer.text
}

async function post (url, headers, body) {
  let res
  try {
    res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT) })
  } catch (err) {
    throw new Error(`POST ${url} failed: ${err.cause?.message ?? err.message}`)
  }
  return { status: res.status, headers: res.headers, text: await res.text() }
}

function expectJson (name, method, answer) {
  const type = answer.headers.get('content-type') ?? ''
  if (answer.status !== 200 || !type.startsWith('application/json')) {
    throw new Error(`${name}: ${method} answered ${answer.status} (${type || 'no content type'}) ${answer.text}`)
  }
  try {
    return JSON.parse(answer.text)
  } catch {
    throw new Error(`${name}: ${method} answered a body that is not JSON: ${answer.text}`)
  }
}
