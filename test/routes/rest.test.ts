import { type Test, test } from 'tap'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { startGateway, waitFor } from '../helper.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'
import { startPlainServer } from '../fixtures/plain-mcp-server.js'

/**
 * The plain-HTTP endpoints for clients without an MCP SDK: JSON in, JSON out, Fastify's error shape with a status
 * that says whose fault it was.
 */

async function setup (t: Test) {
  const fixture = await startHttpFixture(t, {
    name: 'fx',
    tools: [
      { name: 'echo', handler: (args) => ({ content: [{ type: 'text', text: String(args.text) }], structuredContent: { echoed: args.text } }) },
      { name: 'picky', handler: () => { throw new McpError(-32602, 'text must be shorter') } },
      { name: 'broken', handler: () => { throw new Error('disk on fire') } },
      { name: 'refuses', handler: () => ({ content: [{ type: 'text', text: 'cannot do that' }], isError: true }) }
    ],
    resources: [{ uri: 'fx://a', name: 'a', text: 'A' }, { uri: 'fx://b', name: 'b', text: 'B' }]
  })
  const gateway = await startGateway(t, { pageSize: 3, servers: [{ id: 'fx', url: fixture.url }] })
  const post = async (path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(gateway.base + path, {
      method: 'POST',
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  return { fixture, gateway, post }
}

test('POST /mcp/tools/list pages through the catalog', async (t) => {
  const { post } = await setup(t)
  const bare = await post('/mcp/tools/list')
  t.equal(bare.status, 200, 'a POST without a body lists the first page')
  t.same((bare.body.tools as Array<{ name: string }>).map(tool => tool.name), ['fx__broken', 'fx__echo', 'fx__picky'])
  t.type(bare.body.nextCursor, 'string')
  const next = await post('/mcp/tools/list', { cursor: bare.body.nextCursor })
  t.same((next.body.tools as Array<{ name: string }>).map(tool => tool.name), ['fx__refuses'])
  t.notOk('nextCursor' in next.body, 'the last page has no cursor')
  const tool = (bare.body.tools as Array<Record<string, unknown>>)[1]
  t.same(tool?.inputSchema, { type: 'object', properties: { text: { type: 'string' } } }, 'definitions keep their schemas')

  const bad = await post('/mcp/tools/list', { cursor: 'garbage' })
  t.equal(bad.status, 400)
  t.equal(bad.body.code, 'MCPGW_ERR_INVALID_CURSOR')
  const extra = await post('/mcp/tools/list', { cursor: 'x', limit: 5 })
  t.equal(extra.status, 400, 'unknown body keys are refused')
})

test('POST /mcp/tools/call returns the tool result, or an error with the right status', async (t) => {
  const { post } = await setup(t)
  const ok = await post('/mcp/tools/call', { name: 'fx__echo', arguments: { text: 'hi' } })
  t.equal(ok.status, 200)
  t.same(ok.body, { content: [{ type: 'text', text: 'hi' }], structuredContent: { echoed: 'hi' } }, 'the result as the upstream sent it')
  const noArgs = await post('/mcp/tools/call', { name: 'fx__echo' })
  t.equal(noArgs.status, 200, 'arguments are optional')

  const toolError = await post('/mcp/tools/call', { name: 'fx__refuses', arguments: {} })
  t.equal(toolError.status, 200, 'a tool that reports failure is still a result')
  t.equal(toolError.body.isError, true)

  const unknown = await post('/mcp/tools/call', { name: 'fx__nope', arguments: {} })
  t.equal(unknown.status, 404)
  t.same(unknown.body, { statusCode: 404, code: 'MCPGW_ERR_UNKNOWN_TOOL', error: 'Not Found', message: 'Unknown tool: fx__nope' })

  const invalid = await post('/mcp/tools/call', { arguments: {} })
  t.equal(invalid.status, 400)
  t.match(invalid.body.message, /name/, 'the message names the missing field')

  const blamed = await post('/mcp/tools/call', { name: 'fx__picky', arguments: {} })
  t.equal(blamed.status, 400, 'an upstream -32602 is the caller\'s fault')
  t.equal(blamed.body.code, 'MCPGW_ERR_UPSTREAM_RPC')
  t.match(blamed.body.message, /text must be shorter/)

  const crashed = await post('/mcp/tools/call', { name: 'fx__broken', arguments: {} })
  t.equal(crashed.status, 502, 'an upstream internal error is a bad gateway')
  t.equal(crashed.body.code, 'MCPGW_ERR_UPSTREAM_RPC')
  t.match(crashed.body.message, /Upstream fx answered tools\/call with an error: disk on fire/)
})

test('POST /mcp/resources/list', async (t) => {
  const { post } = await setup(t)
  const list = await post('/mcp/resources/list', {})
  t.same(list.body, { resources: [{ uri: 'fx://a', name: 'a', mimeType: 'text/plain' }, { uri: 'fx://b', name: 'b', mimeType: 'text/plain' }] })
})

test('upstream outages as 503', async (t) => {
  // The plain fixture offers no GET stream (405), so once the gateway has asked for one, nothing tells it the
  // server stopped before a call fails on it.
  const fixture = await startPlainServer(t, 'fx')
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: fixture.url }] })
  await waitFor('the gateway to learn there is no GET stream', () => fixture.controls.streamGets > 0)
  await new Promise(resolve => setTimeout(resolve, 50))
  const post = async (path: string, body: unknown) => {
    const res = await fetch(gateway.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  await fixture.stop()
  const down = await post('/mcp/tools/call', { name: 'fx__write', arguments: {} })
  t.equal(down.status, 503, 'a call to an upstream that just stopped fails at once with 503')
  t.equal(down.body.code, 'MCPGW_ERR_UPSTREAM_UNAVAILABLE')
  t.match(down.body.message, /ECONNREFUSED/, 'and says why')
  await waitFor('the failed call to take fx out of the catalog', () => gateway.app.mcpProxy.catalog.tools.length === 0)
  const gone = await post('/mcp/tools/call', { name: 'fx__write', arguments: {} })
  t.equal(gone.status, 404, 'once it is known to be down, its tools are unknown')
})

test('the REST endpoints are behind the Origin guard too', async (t) => {
  const { post } = await setup(t)
  const res = await post('/mcp/tools/list', {}, { origin: 'http://evil.example.com' })
  t.equal(res.status, 403)
  t.equal(res.body.code, 'MCPGW_ERR_ORIGIN_FORBIDDEN')
})
