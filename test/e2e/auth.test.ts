import { createServer, request as httpRequest, type Server } from 'node:http'
import { once } from 'node:events'
import { test, type Test } from 'tap'
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose'
import { WebSocket } from 'ws'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/client/auth.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { everythingStdio, startGateway } from '../helper.js'
import { sha256Hex } from '../../src/config/auth.js'
import { resolveConfig } from '../../src/config/load.js'

/**
 * Client authentication end to end: API keys, JWTs signed with keys made by jose and published by a JWKS server
 * written here (no real identity provider runs on 127.0.0.1), OAuth resource metadata read by the official SDK's
 * discovery, and the SDK client itself over /mcp, /sse and /ws with a bearer token; the upstream is
 * server-everything over stdio.
 */

const ISSUER = 'https://issuer.test'
const INIT = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } }
})
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

/** A JWKS endpoint on 127.0.0.1 serving whatever keys the test puts in `keys`; counts its fetches. */
async function startJwks (t: Test): Promise<{ url: string, keys: JWK[], fetches: number, fail: boolean }> {
  const state = { url: '', keys: [] as JWK[], fetches: 0, fail: false }
  const server: Server = createServer((req, res) => {
    state.fetches++
    if (state.fail) {
      res.statusCode = 500
      res.end('down')
      return
    }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys: state.keys }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`
  return state
}

async function rsaKey (kid: string) {
  const pair = await generateKeyPair('RS256', { extractable: true })
  return { ...pair, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' } }
}

function token (claims: Record<string, unknown>, key: Parameters<SignJWT['sign']>[0], header: { alg: string, kid?: string }, expiresIn = '5m') {
  return new SignJWT(claims).setProtectedHeader(header).setIssuer(ISSUER).setAudience('http://gateway.test/mcp')
    .setIssuedAt().setExpirationTime(expiresIn).sign(key)
}

async function post (url: string, headers: Record<string, string>, body = INIT) {
  const res = await fetch(url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

test('API keys: no credential, a wrong key or a foreign scheme get 401 with a challenge; a configured key opens a session', async (t) => {
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: {
      apiKeys: [
        { name: 'alice', key: 'alice-key-0123456789abcdef', roles: ['dev'] },
        { name: 'bob', keyHash: sha256Hex('bob-key-0123456789abcdef') }
      ]
    }
  })
  const mcp = gateway.mcp.href
  const none = await post(mcp, {})
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="mcp-gateway"', 'no error code when no credential was sent (RFC 6750 §3.1)')
  t.match(JSON.parse(none.body), { jsonrpc: '2.0', id: null, error: { message: /X-API-Key/, data: { code: 'MCPGW_ERR_UNAUTHENTICATED' } } },
    'the body says what to send')
  const wrong = await post(mcp, { 'x-api-key': 'alice-key-0123456789abcdeF' })
  t.equal(wrong.status, 401, 'a key differing in one character')
  t.match(wrong.headers.get('www-authenticate'), /error="invalid_token"/)
  t.equal((await post(mcp, { authorization: 'Basic YWxpY2U6eA==' })).status, 401, 'another scheme')
  t.equal((await post(mcp, { 'x-api-key': 'alice-key-0123456789abcdef', authorization: 'Bearer alice-key-0123456789abcdef' })).status, 400,
    'two credentials at once')
  const admitted: Array<Record<string, string>> = [{ 'x-api-key': 'alice-key-0123456789abcdef' }, { authorization: 'Bearer alice-key-0123456789abcdef' }, { authorization: 'bearer bob-key-0123456789abcdef' }]
  for (const headers of admitted) {
    const ok = await post(mcp, headers)
    t.equal(ok.status, 200, `admitted with ${Object.keys(headers)[0]}`)
  }
  const principals = [...gateway.app.mcpProxy.sessions.all()].map(s => s.principal)
  t.same(principals.map(p => p?.id), ['alice', 'alice', 'bob'], 'each session carries its principal')
  t.same(principals[0]?.roles, ['dev'])

  const health = await fetch(gateway.base + '/health')
  t.equal(health.status, 200, '/health stays open')
  for (const path of ['/status', '/info', '/metrics']) {
    t.equal((await fetch(gateway.base + path)).status, 401, `${path} needs a credential`)
    t.equal((await fetch(gateway.base + path, { headers: { 'x-api-key': 'bob-key-0123456789abcdef' } })).status, 200, `${path} with one`)
  }
  const rest = await fetch(gateway.base + '/mcp/tools/list', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(rest.status, 401, 'REST too')
  t.match(await rest.json(), { code: 'MCPGW_ERR_UNAUTHENTICATED' })
})

test('a session belongs to the principal that opened it: another one presenting its id is told it does not exist', async (t) => {
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: { apiKeys: [{ name: 'alice', key: 'alice-key-0123456789abcdef' }, { name: 'mallory', key: 'mallory-key-0123456789abcd' }] }
  })
  const alice = { 'x-api-key': 'alice-key-0123456789abcdef' }
  const mallory = { 'x-api-key': 'mallory-key-0123456789abcd' }
  const opened = await post(gateway.mcp.href, alice)
  const sessionId = opened.headers.get('mcp-session-id') as string
  const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' }
  const ping = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' })
  t.equal((await post(gateway.mcp.href, { ...mallory, ...session }, ping)).status, 404, 'POST')
  t.equal((await fetch(gateway.mcp, { headers: { ...mallory, ...session, accept: 'text/event-stream' } })).status, 404, 'GET')
  t.equal((await fetch(gateway.mcp, { method: 'DELETE', headers: { ...mallory, ...session } })).status, 404, 'DELETE')
  t.equal(gateway.app.mcpProxy.sessions.size, 1, 'the session lives on')
  t.equal((await post(gateway.mcp.href, { ...alice, ...session }, ping)).status, 200, 'its owner still uses it')

  // Legacy SSE: the session id travels in the query string, where anyone could copy it.
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const stream = await fetch(gateway.base + '/sse', { headers: { ...alice, accept: 'text/event-stream' }, signal: controller.signal })
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  while (!text.includes('sessionId=')) text += (await reader.read()).value
  const endpoint = /data: (\S+)/.exec(text)?.[1] as string
  t.equal((await post(gateway.base + endpoint, mallory, ping)).status, 404, '/messages with another principal')
  t.equal((await post(gateway.base + endpoint, alice, ping)).status, 202, '/messages with the owner')
})

test('JWTs from a JWKS: the SDK client over every transport with a bearer token; bad tokens refused; a new kid works without restart', async (t) => {
  const jwks = await startJwks(t)
  const first = await rsaKey('k1')
  jwks.keys.push(first.jwk)
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: {
      jwt: { jwksUrl: jwks.url, issuer: ISSUER, audience: 'http://gateway.test/mcp', rolesClaim: 'realm.roles', jwksCooldownSec: 1 },
      apiKeys: [{ name: 'ops', key: 'ops-key-0123456789abcdef' }]
    }
  })
  const good = await token({ sub: 'carol', realm: { roles: ['dev', 'ops'] }, scope: 'mcp read' }, first.privateKey, { alg: 'RS256', kid: 'k1' })
  const requestInit = { headers: { authorization: `Bearer ${good}` } }
  // The SDK's WebSocket transport takes no headers; a ws subclass adds them, as a Node client's own socket would.
  class BearerWebSocket extends WebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: requestInit.headers })
    }
  }
  const previous = globalThis.WebSocket
  globalThis.WebSocket = BearerWebSocket as unknown as typeof globalThis.WebSocket
  t.teardown(() => { globalThis.WebSocket = previous })
  const transports: Record<string, () => Transport> = {
    '/mcp': () => new StreamableHTTPClientTransport(gateway.mcp, { requestInit }),
    '/sse': () => new SSEClientTransport(new URL(gateway.base + '/sse'), { requestInit }),
    '/ws': () => new WebSocketClientTransport(new URL(gateway.base.replace('http:', 'ws:') + '/ws'))
  }
  for (const [name, make] of Object.entries(transports)) {
    const client = new Client({ name: 'jwt', version: '1' })
    await client.connect(make())
    t.teardown(() => client.close())
    t.same(await client.callTool({ name: 'e__echo', arguments: { message: name } }), { content: [{ type: 'text', text: `Echo: ${name}` }] }, `${name}: called`)
  }
  const principals = [...gateway.app.mcpProxy.sessions.all()].map(s => s.principal)
  t.same(principals.map(p => [p?.kind, p?.id, p?.roles, p?.scopes]), Array(3).fill(['jwt', 'carol', ['dev', 'ops'], ['mcp', 'read']]),
    'the principal is the subject, with roles from the configured claim path and scopes')

  const socket = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws', 'mcp')
  socket.on('error', () => {})
  const [, upgrade] = await once(socket, 'unexpected-response') as [unknown, { statusCode: number }]
  t.equal(upgrade.statusCode, 401, '/ws without a token: the upgrade is answered 401, no socket opens')
  socket.terminate()

  const other = await rsaKey('k1')
  const hsWithPublicKey = new TextEncoder().encode(await exportSPKI(first.publicKey))
  const bad: Record<string, string> = {
    expired: await token({ sub: 'carol' }, first.privateKey, { alg: 'RS256', kid: 'k1' }, '-1m'),
    'wrong issuer': await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://evil.test')
      .setAudience('http://gateway.test/mcp').setExpirationTime('5m').sign(first.privateKey),
    'wrong audience': await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER)
      .setAudience('http://other.test/mcp').setExpirationTime('5m').sign(first.privateKey),
    'signed by another key under the same kid': await token({ sub: 'carol' }, other.privateKey, { alg: 'RS256', kid: 'k1' }),
    'HS256 signed with the public key as the secret': await token({ sub: 'carol' }, hsWithPublicKey, { alg: 'HS256', kid: 'k1' }),
    'alg none': [Buffer.from('{"alg":"none"}').toString('base64url'), Buffer.from(JSON.stringify({ sub: 'carol', iss: ISSUER, aud: 'http://gateway.test/mcp', exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url'), ''].join('.'),
    tampered: (() => { const [h, , s] = good.split('.'); return [h, Buffer.from(JSON.stringify({ sub: 'root', iss: ISSUER, aud: 'http://gateway.test/mcp', exp: 9999999999 })).toString('base64url'), s].join('.') })(),
    'no subject': await token({}, first.privateKey, { alg: 'RS256', kid: 'k1' })
  }
  for (const [what, jwt] of Object.entries(bad)) {
    const refused = await post(gateway.mcp.href, { authorization: `Bearer ${jwt}` })
    t.equal(refused.status, 401, `${what}: 401`)
    t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/, `${what}: invalid_token`)
  }

  // Rotation: the issuer publishes a new key; a token with its kid makes the gateway fetch the keys again, at most
  // once per cooldown (1 s here, 30 s by default), so a stream of made-up kids is not a stream of fetches.
  const second = await rsaKey('k2')
  jwks.keys.push(second.jwk)
  await new Promise(resolve => setTimeout(resolve, 1100))
  const before = jwks.fetches
  const rotated = await token({ sub: 'dave' }, second.privateKey, { alg: 'RS256', kid: 'k2' })
  t.equal((await post(gateway.mcp.href, { authorization: `Bearer ${rotated}` })).status, 200, 'a key published after start-up is accepted, no restart')
  t.equal(jwks.fetches, before + 1, 'fetched once for it')
  for (let i = 0; i < 20; i++) {
    const unknown = await token({ sub: 'x' + i }, first.privateKey, { alg: 'RS256', kid: 'unknown-' + i })
    t.equal((await post(gateway.mcp.href, { authorization: `Bearer ${unknown}` })).status, 401)
  }
  t.ok(jwks.fetches - before <= 2, `20 tokens with unknown kids in under a second: ${jwks.fetches - before - 1} more fetches (the cooldown)`)
})

test('a JWKS that cannot be reached answers 503, not 401: the token may be good', async (t) => {
  const gateway = await startGateway(t, { servers: [], auth: { jwt: { jwksUrl: 'http://127.0.0.1:9/jwks.json' } } })
  const key = await rsaKey('k')
  const refused = await post(gateway.mcp.href, { authorization: `Bearer ${await token({ sub: 'a' }, key.privateKey, { alg: 'RS256', kid: 'k' })}` })
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '5')
  t.match(JSON.parse(refused.body).error.message, /JWKS/)
})

test('a failing JWKS is not asked once per request: after a failed fetch, none for the cooldown (jose waits only after a success)', async (t) => {
  const jwks = await startJwks(t)
  const key = await rsaKey('k1')
  jwks.keys.push(key.jwk)
  jwks.fail = true
  const gateway = await startGateway(t, { servers: [], auth: { jwt: { jwksUrl: jwks.url, jwksCooldownSec: 2 } } })
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    const forged = await token({ sub: 'x' + i }, key.privateKey, { alg: 'RS256', kid: 'k1' })
    statuses.push((await post(gateway.mcp.href, { authorization: `Bearer ${forged}` })).status)
  }
  t.equal(jwks.fetches, 1, `20 tokens while the issuer answers 500: ${jwks.fetches} fetch`)
  t.same([...new Set(statuses)], [503], 'each answered 503 (the issuer is down), not 401')
  jwks.fail = false
  await new Promise(resolve => setTimeout(resolve, 2100))
  t.equal((await post(gateway.mcp.href, { authorization: `Bearer ${await token({ sub: 'y' }, key.privateKey, { alg: 'RS256', kid: 'k1' })}` })).status, 200,
    'after the cooldown the keys are fetched again and verify')
})

test('the roles of a session follow its principal\'s current credential; a bare credential is never echoed', async (t) => {
  const secret = 'a-shared-secret-of-32-characters!'
  const key = new TextEncoder().encode(secret)
  const gateway = await startGateway(t, {
    servers: [everythingStdio('e')],
    auth: {
      jwt: { secret },
      roles: { ops: { tools: { allow: ['*'] } }, reader: { tools: { allow: ['e__echo'] } } }
    }
  })
  const as = (roles: string[]) => new SignJWT({ sub: 'bob', roles }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(key)
  const opened = await post(gateway.mcp.href, { authorization: `Bearer ${await as(['ops'])}` })
  const session = { 'mcp-session-id': opened.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-06-18' }
  await post(gateway.mcp.href, { authorization: `Bearer ${await as(['ops'])}`, ...session }, '{"jsonrpc":"2.0","method":"notifications/initialized"}')
  const list = async (roles: string[]) => {
    const answer = await post(gateway.mcp.href, { authorization: `Bearer ${await as(roles)}`, ...session }, '{"jsonrpc":"2.0","id":5,"method":"tools/list"}')
    return (JSON.parse(answer.body) as { result: { tools: unknown[] } }).result.tools.length
  }
  t.ok(await list(['ops']) > 1, 'ops sees every tool')
  t.equal(await list(['reader']), 1, 'the same session with bob\'s new token (reader only) sees one')

  const bare = await post(gateway.mcp.href, { authorization: 'a-secret-key-without-a-scheme' })
  t.equal(bare.status, 401)
  t.notOk(bare.body.includes('a-secret') || (bare.headers.get('www-authenticate') ?? '').includes('a-secret'), 'the value is not echoed')
  t.equal((await post(gateway.mcp.href, { authorization: 'Bearer' })).status, 401, '"Bearer" alone')
})

test('a shared secret or a PEM public key; HS/RS confusion and algorithms outside the list refused', async (t) => {
  const secret = 'a-shared-secret-of-32-characters!'
  const hs = await startGateway(t, { servers: [], auth: { jwt: { secret, algorithms: ['HS256'] } } })
  const key = new TextEncoder().encode(secret)
  t.equal((await post(hs.mcp.href, { authorization: `Bearer ${await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(key)}` })).status, 200, 'HS256')
  t.equal((await post(hs.mcp.href, { authorization: `Bearer ${await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'HS512' }).setExpirationTime('5m').sign(key)}` })).status, 401, 'HS512 not in the list')
  const forever = await post(hs.mcp.href, { authorization: `Bearer ${await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'HS256' }).sign(key)}` })
  t.equal(forever.status, 401, 'a token without exp would be good forever: refused')
  t.match(forever.headers.get('www-authenticate'), /no expiry/)

  const pair = await generateKeyPair('ES256', { extractable: true })
  const pem = await exportSPKI(pair.publicKey)
  const es = await startGateway(t, { servers: [], auth: { jwt: { publicKey: pem, clockToleranceSec: 30 } } })
  t.equal((await post(es.mcp.href, { authorization: `Bearer ${await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(pair.privateKey)}` })).status, 200,
    'ES256, expired 10 s ago within a 30 s tolerance')
  t.equal((await post(es.mcp.href, { authorization: `Bearer ${await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(pem))}` })).status, 401,
    'HS256 signed with the public key PEM')
})

test('OAuth: the SDK discovers the resource metadata from the 401; audience is the resource; a missing scope is 403', async (t) => {
  const jwks = await startJwks(t)
  const key = await rsaKey('k1')
  jwks.keys.push(key.jwk)
  const gateway = await startGateway(t, {
    servers: [],
    auth: {
      jwt: { jwksUrl: jwks.url, issuer: ISSUER },
      oauth: { resource: 'http://gateway.test/mcp', authorizationServers: [ISSUER], scopesSupported: ['mcp', 'admin'], requiredScopes: ['mcp'] }
    }
  })
  const refused = await post(gateway.mcp.href, {})
  const challenge = refused.headers.get('www-authenticate') ?? ''
  t.match(challenge, /resource_metadata="http:\/\/gateway\.test\/\.well-known\/oauth-protected-resource\/mcp"/, 'the challenge points at the metadata of the configured resource')
  t.match(challenge, /scope="mcp"/)
  const metadata = await discoverOAuthProtectedResourceMetadata(gateway.mcp, { resourceMetadataUrl: new URL(gateway.base + '/.well-known/oauth-protected-resource/mcp') })
  t.same(metadata, {
    resource: 'http://gateway.test/mcp',
    authorization_servers: [ISSUER],
    scopes_supported: ['mcp', 'admin'],
    bearer_methods_supported: ['header'],
    resource_name: 'fastify-mcp-gateway'
  }, 'the SDK reads and validates the metadata document')
  t.equal((await fetch(gateway.base + '/.well-known/oauth-protected-resource')).status, 200, 'also at the bare well-known path')

  t.equal((await post(gateway.mcp.href, { authorization: `Bearer ${await token({ sub: 'a', scope: 'mcp' }, key.privateKey, { alg: 'RS256', kid: 'k1' })}` })).status, 200,
    'a token for this resource with the scope')
  const scopeless = await post(gateway.mcp.href, { authorization: `Bearer ${await token({ sub: 'a', scope: 'read' }, key.privateKey, { alg: 'RS256', kid: 'k1' })}` })
  t.equal(scopeless.status, 403)
  t.match(scopeless.headers.get('www-authenticate'), /error="insufficient_scope"/)
  const foreign = await new SignJWT({ sub: 'a', scope: 'mcp' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER)
    .setAudience('http://other-resource.test/mcp').setExpirationTime('5m').sign(key.privateKey)
  t.equal((await post(gateway.mcp.href, { authorization: `Bearer ${foreign}` })).status, 401, 'a token for another resource (RFC 8707)')
})

test('hostile credentials: none admitted, none answered 5xx', async (t) => {
  const gateway = await startGateway(t, {
    servers: [],
    auth: { apiKeys: [{ name: 'k', key: 'the-right-key-0123456789' }], jwt: { secret: 'a-shared-secret-of-32-characters!' } }
  })
  const values = ['', ' ', 'Bearer', 'Bearer ', 'Bearer  ', 'Bearer the-right-key-012345678', 'Bearer the-right-key-01234567890',
    'Bearer ' + 'x'.repeat(15000), 'Bearer ' + 'a.b.c', 'Bearer ' + 'a'.repeat(6000) + '.' + 'b'.repeat(6000) + '.c', 'Bearer ..', 'Bearer é.ü.ñ',
    'Bearer eyJhbGciOiJub25lIn0.e30.', 'Bearer eyJ.eyJ.eyJ', 'Bearer ' + Buffer.from('{"alg":"HS256"}').toString('base64url') + '.' + Buffer.from('[]').toString('base64url') + '.sig',
    'Negotiate abc', 'Bearer\tthe-right-key-0123456789']
  for (const value of values) {
    const res = await fetch(gateway.mcp, { method: 'POST', headers: { ...JSON_HEADERS, authorization: Buffer.from(value, 'utf8').toString('latin1') }, body: INIT })
    t.ok(res.status >= 400 && res.status < 500, `Authorization ${JSON.stringify(value.slice(0, 40))}: ${res.status}`)
    await res.arrayBuffer()
  }
  for (const apiKey of ['', 'x'.repeat(8000), 'the-right-key-012345678\u00e9', 'THE-RIGHT-KEY-0123456789']) {
    const res = await fetch(gateway.mcp, { method: 'POST', headers: { ...JSON_HEADERS, 'x-api-key': Buffer.from(apiKey, 'utf8').toString('latin1') }, body: INIT })
    t.ok(res.status >= 400 && res.status < 500, `X-API-Key ${JSON.stringify(apiKey.slice(0, 30))}: ${res.status}`)
    await res.arrayBuffer()
  }
  // Repeated headers, as a confused proxy might send them: Node joins repeated X-API-Key values into one.
  const repeated = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(gateway.mcp, { method: 'POST', headers: ['host', gateway.mcp.host, ...Object.entries(JSON_HEADERS).flat(), 'x-api-key', 'the-right-key-0123456789', 'x-api-key', 'another-key-0123456789'] }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end(INIT)
  })
  t.equal(repeated, 401, `a right key repeated with a wrong one is not admitted (${repeated})`)
  t.equal(gateway.app.mcpProxy.sessions.size, 0, 'no session was opened')
})

test('auth config problems are named by field', async (t) => {
  const problems = (auth: unknown) => {
    try {
      resolveConfig({ auth }, { envOverrides: false, source: 'test' })
      return ''
    } catch (err) {
      return (err as Error).message
    }
  }
  t.match(problems({}), /auth: needs apiKeys, jwt or certificates/)
  t.match(problems({ apiKeys: [{ name: 'a' }] }), /auth\.apiKeys\[0\]: give either key or keyHash/)
  const twice = problems({ apiKeys: [{ name: 'a', key: 'k'.repeat(16) }, { name: 'a', key: 'k'.repeat(16) }] })
  t.match(twice, /auth\.apiKeys\[1\]: name "a" is already used by auth\.apiKeys\[0\]/)
  t.match(twice, /auth\.apiKeys\[1\]: the same key as auth\.apiKeys\[0\]/)
  t.match(problems({ jwt: { secret: 's'.repeat(32), publicKey: 'x' } }), /exactly one of secret, publicKey or jwksUrl/)
  t.match(problems({ jwt: { publicKey: 'not a pem' } }), /auth\.jwt\.publicKey: not a PEM public key/)
  t.match(problems({ jwt: { secret: 's'.repeat(32), algorithms: ['RS256'] } }), /RS256 cannot be verified with a shared secret/)
  t.match(problems({ jwt: { jwksUrl: 'file:///etc/keys' } }), /jwksUrl.*not an http\(s\) URL/)
  t.match(problems({ oauth: { resource: 'http://x.test/mcp', authorizationServers: ['http://as.test'] }, apiKeys: [{ name: 'a', key: 'k'.repeat(16) }] }),
    /auth\.oauth: needs auth\.jwt/)
  t.match(problems({ jwt: { secret: 'short' } }), /auth\.jwt\.secret/)
  t.match(problems({ certificates: [{ subject: 'ci' }] }), /auth\.certificates: needs tls\.ca/)
  t.equal(problems({ apiKeys: [{ name: 'a', key: 'k'.repeat(16) }], openMetrics: true }), '')
})

test('auth.openMetrics lets a scraper in without credentials; the rest stays closed', async (t) => {
  const gateway = await startGateway(t, { servers: [], auth: { apiKeys: [{ name: 'a', key: 'k'.repeat(16) }], openMetrics: true } })
  t.equal((await fetch(gateway.base + '/metrics')).status, 200)
  t.equal((await fetch(gateway.base + '/status')).status, 401)
})
