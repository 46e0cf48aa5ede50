import { Writable } from 'node:stream'
import { pino } from 'pino'
import { test } from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { buildApp } from '../../src/app.js'
import { ANONYMOUS } from '../../src/client-context.js'
import { resolveConfig } from '../../src/config/load.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * forwardIdentity and the audit log: a fixture upstream (written for the tests: no published server reports the
 * headers it got) tells which identity headers reached it; the gateway's pino log is captured and read back.
 */

const KEY = 'alice-key-0123456789abcdef'

test('forwardIdentity sends the caller to the upstreams configured for it, and only to them; every request is audited', async (t) => {
  const whoami = {
    name: 'whoami',
    handler: (_args: Record<string, unknown>, _signal: AbortSignal, extra: { requestInfo?: { headers: Record<string, unknown> } }) => {
      const headers = extra.requestInfo?.headers ?? {}
      return { content: [{ type: 'text', text: JSON.stringify([headers['x-mcp-gateway-principal'], headers['x-mcp-gateway-principal-kind'], headers['x-mcp-gateway-roles']]) }] }
    }
  }
  const trusted = await startHttpFixture(t, { name: 'trusted', tools: [whoami] })
  const plain = await startHttpFixture(t, { name: 'plain', tools: [whoami] })
  const lines: Array<Record<string, unknown>> = []
  let raw = ''
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      raw += chunk.toString()
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const app = await buildApp({
    config: resolveConfig({
      metrics: { defaultMetrics: false },
      servers: [{ id: 'trusted', url: trusted.url, forwardIdentity: true }, { id: 'plain', url: plain.url }],
      auth: { apiKeys: [{ name: 'alice@example.com', key: KEY, roles: ['dev', 'on call'] }] }
    }, { envOverrides: false, source: 'test config' })
  }, { loggerInstance: pino({ level: 'info' }, stream) })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const client = new Client({ name: 'audit', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(base + '/mcp'), { requestInit: { headers: { 'x-api-key': KEY } } }))
  t.teardown(() => client.close())
  const seen = async (tool: string) => JSON.parse(((await client.callTool({ name: tool, arguments: {} })).content as Array<{ text: string }>)[0]?.text ?? 'null') as unknown
  t.same(await seen('trusted__whoami'), ['alice%40example.com', 'api-key', 'dev,on%20call'], 'the trusted upstream gets who is calling, percent-encoded')
  t.same(await seen('plain__whoami'), [null, null, null], 'another upstream gets nothing')
  await client.callTool({ name: 'nobody__here', arguments: {} }).catch(() => {})
  const rest = await fetch(base + '/mcp/tools/list', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: '{}' })
  t.equal(rest.status, 200)

  const audit = lines.filter(line => line.audit === true)
  t.match(audit.find(line => line.tool === 'trusted__whoami'), {
    principal: 'alice@example.com', kind: 'api-key', method: 'tools/call', outcome: 'ok', ms: Number
  }, 'a call: who, what, how it ended, how long')
  t.match(audit.find(line => line.tool === 'nobody__here'), { outcome: 'MCPGW_ERR_UNKNOWN_TOOL' }, 'a failure names its code')
  t.ok(audit.some(line => line.method === 'initialize'), 'initialize too')
  t.ok(audit.some(line => line.method === 'tools/list'), 'and REST lists')
  t.notOk(raw.includes(KEY), 'the key never reaches the log')
})

test('forwardIdentity needs an HTTP upstream', async (t) => {
  t.throws(() => resolveConfig({ servers: [{ id: 's', command: 'node', forwardIdentity: true }] }, { envOverrides: false, source: 'test' }),
    { message: /servers\[0\]\.forwardIdentity: .*only a streamable-http upstream/ })
})

test('forwardIdentity: a principal whose id or roles hold a lone surrogate is sent with U+FFFD, not a crash', async (t) => {
  const whoami = {
    name: 'whoami',
    handler: (_args: Record<string, unknown>, _signal: AbortSignal, extra: { requestInfo?: { headers: Record<string, unknown> } }) =>
      ({ content: [{ type: 'text', text: String(extra.requestInfo?.headers['x-mcp-gateway-principal']) + ' ' + String(extra.requestInfo?.headers['x-mcp-gateway-roles']) }] })
  }
  const trusted = await startHttpFixture(t, { name: 'trusted', tools: [whoami] })
  const app = await buildApp({
    config: resolveConfig({ metrics: { defaultMetrics: false }, servers: [{ id: 'trusted', url: trusted.url, forwardIdentity: true }], auth: { apiKeys: [{ name: 'k', key: KEY }] } },
      { envOverrides: false, source: 'test config' })
  }, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const client = { ...ANONYMOUS, principal: { kind: 'jwt' as const, id: 'bad\ud800id', roles: ['r\udc00'], scopes: [] } }
  const result = await app.mcpProxy.callTool('trusted__whoami', {}, { client }) as { content: Array<{ text: string }> }
  t.equal(result.content[0]?.text, 'bad%EF%BF%BDid r%EF%BF%BD')
  t.match(app.mcpProxy.upstreamHealth()[0], { inFlight: 0, queue: { running: 0 } })
})
