import { test } from 'tap'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { connectClient, everythingStdio, startEverythingHttp, startGateway } from '../helper.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * The core promise: an official SDK client connected to the gateway sees and uses what every upstream offers —
 * server-everything over Streamable HTTP and over stdio, and two fixture servers whose names collide — with the
 * same results as talking to each upstream directly.
 */

async function allTools (client: Client) {
  const tools = []
  let cursor: string | undefined
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor })
    tools.push(...page.tools)
    cursor = page.nextCursor
  } while (cursor !== undefined)
  return tools
}

test('an SDK client aggregates server-everything (HTTP and stdio) and colliding fixtures', async (t) => {
  const everythingHttp = await startEverythingHttp(t)
  const alpha = await startHttpFixture(t, {
    name: 'alpha',
    tools: [{ name: 'search' }, { name: 'get_time' }, { name: 'alpha_only' }],
    prompts: [{ name: 'summarize', text: 'alpha summary' }]
  })
  const beta = await startHttpFixture(t, {
    name: 'beta',
    tools: [{ name: 'search' }, { name: 'get_time' }, { name: 'beta_only' }],
    prompts: [{ name: 'summarize', text: 'beta summary' }]
  })
  const gateway = await startGateway(t, {
    pageSize: 7,
    servers: [
      { id: 'everything-http', url: everythingHttp.url },
      everythingStdio('everything-stdio'),
      { id: 'alpha', url: alpha.url },
      { id: 'beta', url: beta.url }
    ]
  })
  const client = await connectClient(t, gateway.mcp)
  const direct = await connectClient(t, new URL(everythingHttp.url))

  t.equal(client.getServerVersion()?.name, 'fastify-mcp-gateway')
  t.ok(client.getServerCapabilities()?.tools, 'tools capability')

  const tools = await allTools(client)
  const names = tools.map(tool => tool.name)
  t.same(names, [...names].sort(), 'listed in a stable order')
  t.equal(new Set(names).size, names.length, 'no duplicate names across pages')

  const directTools = (await direct.listTools()).tools
  t.ok(directTools.length >= 10, `server-everything lists ${directTools.length} tools`)
  const tasksOnly = directTools.filter(tool => (tool.execution as { taskSupport?: string } | undefined)?.taskSupport === 'required')
  t.ok(tasksOnly.length > 0, 'server-everything has tools that can only be called as tasks')
  for (const prefix of ['everything-http', 'everything-stdio']) {
    for (const tool of directTools) {
      const exposed = tools.find(x => x.name === `${prefix}__${tool.name}`)
      if (tasksOnly.includes(tool)) {
        // Regression: such a tool was listed, yet the gateway (which does not map tasks) could never call it.
        t.equal(exposed, undefined, `${prefix} does not list ${tool.name}: it needs tasks, which the gateway does not support`)
      } else {
        t.same(exposed, { ...tool, name: `${prefix}__${tool.name}` }, `${prefix} exposes ${tool.name} unchanged but for its name`)
      }
    }
  }
  for (const name of ['alpha__search', 'beta__search', 'alpha__get_time', 'beta__get_time', 'alpha__alpha_only', 'beta__beta_only']) {
    t.ok(names.includes(name), `colliding fixture tool ${name} is listed under its service`)
  }

  for (const prefix of ['everything-http', 'everything-stdio']) {
    const viaGateway = await client.callTool({ name: `${prefix}__echo`, arguments: { message: 'hello' } })
    const viaDirect = await direct.callTool({ name: 'echo', arguments: { message: 'hello' } })
    t.same(viaGateway, viaDirect, `${prefix} echo gives the same result as the upstream`)
    const sum = await client.callTool({ name: `${prefix}__get-sum`, arguments: { a: 2, b: 40 } })
    t.same(sum, await direct.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }), `${prefix} get-sum matches`)
  }
  t.same(await client.callTool({ name: 'alpha__search', arguments: { text: 'x' } }),
    { content: [{ type: 'text', text: 'alpha:search:{"text":"x"}' }] }, 'alpha search reaches alpha')
  t.same(await client.callTool({ name: 'beta__search', arguments: { text: 'x' } }),
    { content: [{ type: 'text', text: 'beta:search:{"text":"x"}' }] }, 'beta search reaches beta')

  const byUri = (a: { uri: string }, b: { uri: string }) => a.uri < b.uri ? -1 : 1
  const resources = (await client.listResources()).resources
  const directResources = (await direct.listResources()).resources
  t.same(resources, [...directResources].sort(byUri), 'resources are listed under their own URIs, sorted')
  const uri = directResources[0]?.uri as string
  t.same(await client.readResource({ uri }), await direct.readResource({ uri }), 'reading a resource matches')
  const templates = (await client.listResourceTemplates()).resourceTemplates
  t.same(templates, (await direct.listResourceTemplates()).resourceTemplates.sort((a, b) => a.uriTemplate < b.uriTemplate ? -1 : 1),
    'templates are listed, sorted')
  const dynamic = 'demo://resource/dynamic/text/42'
  t.same(await client.readResource({ uri: dynamic }), await direct.readResource({ uri: dynamic }), 'a templated resource is routed by its template')

  const prompts = (await client.listPrompts()).prompts
  const promptNames = prompts.map(p => p.name)
  t.ok(promptNames.includes('alpha__summarize') && promptNames.includes('beta__summarize'), 'colliding prompts are both listed')
  t.same(await client.getPrompt({ name: 'everything-http__args-prompt', arguments: { city: 'Paris' } }),
    await direct.getPrompt({ name: 'args-prompt', arguments: { city: 'Paris' } }), 'prompts/get matches')
  t.same((await client.getPrompt({ name: 'beta__summarize', arguments: { topic: 'cats' } })).messages,
    [{ role: 'user', content: { type: 'text', text: 'beta summary cats' } }])
  const completion = await client.complete({
    ref: { type: 'ref/prompt', name: 'everything-stdio__completable-prompt' },
    argument: { name: 'department', value: 'E' }
  })
  t.same(completion.completion.values, ['Engineering'], 'completion is routed to the prompt\'s service')
})

test('large results pass through unchanged, as the upstream wrote them', async (t) => {
  const blob = Buffer.alloc(3 * 1024 * 1024, 'mcp-gateway').toString('base64')
  const big = { content: [{ type: 'image', data: blob, mimeType: 'image/png' }, { type: 'text', text: 'ünïcødé "quotes" \\ and \u2028' }] }
  const fixture = await startHttpFixture(t, { name: 'big', tools: [{ name: 'picture', handler: () => big }] })
  const gateway = await startGateway(t, { servers: [{ id: 'big', url: fixture.url }] })
  const client = await connectClient(t, gateway.mcp)
  t.same(await client.callTool({ name: 'big__picture', arguments: {} }), big, 'over MCP')
  const rest = await fetch(gateway.base + '/mcp/tools/call', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'big__picture' })
  })
  t.same(await rest.json(), big, 'over REST')
  t.same(await gateway.app.mcpProxy.callTool('big__picture'), big, 'and through the programmatic API')
})
