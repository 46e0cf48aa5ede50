import { test, type Test } from 'tap'
import { WebSocket } from 'ws'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { everythingStdio, type Gateway, startGateway } from '../helper.js'
import { resolveConfig } from '../../src/config/load.js'

/**
 * Authorization by role (auth.roles) end to end, with the official SDK client over /mcp, plain REST, the WebSocket
 * envelope and the admin API, in front of server-everything over stdio. Each role's lists are filtered before
 * they are paged, and a name a role may not see answers exactly as a name that does not exist.
 */

const KEYS = {
  dev: 'dev-key-0123456789abcdef',
  reader: 'reader-key-0123456789abcd',
  both: 'both-key-0123456789abcdef',
  nobody: 'nobody-key-0123456789abc',
  admin: 'admin-key-0123456789abcde'
}

async function gatewayWithRoles (t: Test, pageSize = 500): Promise<Gateway> {
  return startGateway(t, {
    pageSize,
    servers: [everythingStdio('e')],
    auth: {
      apiKeys: [
        { name: 'dev', key: KEYS.dev, roles: ['dev'] },
        { name: 'reader', key: KEYS.reader, roles: ['reader'] },
        { name: 'both', key: KEYS.both, roles: ['dev', 'reader'] },
        { name: 'nobody', key: KEYS.nobody },
        { name: 'admin', key: KEYS.admin, roles: ['ops'] }
      ],
      roles: {
        dev: {
          tools: { allow: ['e__*'], deny: ['e__get-*', 'e__echo'] },
          resources: { allow: ['demo://resource/static/document/*'], deny: ['*/features.md'] },
          prompts: { allow: ['e__simple-prompt'] }
        },
        reader: { tools: { allow: ['e__echo', 'e__get-sum'] } },
        ops: { tools: { allow: ['*'] }, resources: { allow: ['*'] }, prompts: { allow: ['*'] }, admin: true }
      }
    }
  })
}

async function clientOf (t: Test, gateway: Gateway, key: string): Promise<Client> {
  const client = new Client({ name: 'roles', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(gateway.mcp, { requestInit: { headers: { 'x-api-key': key } } }))
  t.teardown(() => client.close())
  return client
}

/** Every name of a list, page by page (the SDK takes one page per call). */
async function allNames (client: Client, list: 'tools' | 'prompts' | 'resources' | 'templates'): Promise<string[]> {
  const names: string[] = []
  let cursor: string | undefined
  do {
    if (list === 'tools') {
      const page = await client.listTools({ cursor })
      names.push(...page.tools.map(x => x.name))
      cursor = page.nextCursor
    } else if (list === 'prompts') {
      const page = await client.listPrompts({ cursor })
      names.push(...page.prompts.map(x => x.name))
      cursor = page.nextCursor
    } else if (list === 'resources') {
      const page = await client.listResources({ cursor })
      names.push(...page.resources.map(x => x.uri))
      cursor = page.nextCursor
    } else {
      const page = await client.listResourceTemplates({ cursor })
      names.push(...page.resourceTemplates.map(x => x.uriTemplate))
      cursor = page.nextCursor
    }
  } while (cursor !== undefined)
  return names.sort()
}

async function failure (call: Promise<unknown>): Promise<string> {
  try {
    await call
    return 'no error'
  } catch (err) {
    return (err as Error).message
  }
}

test('each role lists exactly what its policy allows, and calls to anything else answer as unknown names', async (t) => {
  const gateway = await gatewayWithRoles(t)
  // The role with allow "*" sees the whole catalog; the others' expectations are written against it.
  const admin = await clientOf(t, gateway, KEYS.admin)
  const everyTool = await allNames(admin, 'tools')
  const everyResource = await allNames(admin, 'resources')
  t.ok(everyTool.length > 10 && everyTool.includes('e__echo') && everyTool.includes('e__get-sum'), 'allow "*": every tool')
  t.ok(everyResource.includes('demo://resource/static/document/features.md'))
  t.same(await allNames(admin, 'templates'), ['demo://resource/dynamic/blob/{resourceId}', 'demo://resource/dynamic/text/{resourceId}'])

  const dev = await clientOf(t, gateway, KEYS.dev)
  const devTools = await allNames(dev, 'tools')
  t.same(devTools, everyTool.filter(n => !n.startsWith('e__get-') && n !== 'e__echo'), 'dev: e__* without e__get-* and e__echo (deny wins)')
  t.ok(devTools.includes('e__toggle-simulated-logging') && !devTools.includes('e__get-env'))
  t.same(await allNames(dev, 'prompts'), ['e__simple-prompt'])
  t.same(await allNames(dev, 'resources'), everyResource.filter(u => u.startsWith('demo://resource/static/document/') && !u.endsWith('/features.md')),
    'dev: the static documents but features.md')
  t.same(await allNames(dev, 'templates'), [], 'no template matches the documents glob')

  const hidden = await failure(dev.callTool({ name: 'e__echo', arguments: { message: 'x' } }))
  const missing = await failure(dev.callTool({ name: 'e__no-such-tool', arguments: {} }))
  t.match(hidden, /Unknown tool: e__echo/)
  t.equal(hidden.replace('e__echo', 'NAME'), missing.replace('e__no-such-tool', 'NAME'), 'a hidden tool answers as an unknown one does')
  t.match(await failure(dev.getPrompt({ name: 'e__args-prompt', arguments: { city: 'x' } })), /Unknown prompt: e__args-prompt/)
  t.match(await failure(dev.readResource({ uri: 'demo://resource/static/document/features.md' })), /Resource not found/)
  t.match(await failure(dev.readResource({ uri: 'demo://resource/dynamic/text/1' })), /Resource not found/, 'a template URI dev may not see')
  t.match(await failure(dev.subscribeResource({ uri: 'demo://resource/dynamic/text/1' })), /Resource not found/, 'nor subscribe to')
  t.match(await failure(dev.complete({ ref: { type: 'ref/prompt', name: 'e__completable-prompt' }, argument: { name: 'department', value: 'E' } })),
    /Unknown prompt/, 'nor complete for')
  t.ok(await dev.readResource({ uri: 'demo://resource/static/document/architecture.md' }), 'an allowed resource reads')
  t.ok(await dev.callTool({ name: 'e__toggle-simulated-logging', arguments: {} }), 'an allowed tool calls')

  const reader = await clientOf(t, gateway, KEYS.reader)
  t.same(await allNames(reader, 'tools'), ['e__echo', 'e__get-sum'])
  t.same(await allNames(reader, 'prompts'), [], 'a kind the role does not mention grants nothing')
  t.same(await reader.callTool({ name: 'e__echo', arguments: { message: 'hi' } }), { content: [{ type: 'text', text: 'Echo: hi' }] })

  const both = await clientOf(t, gateway, KEYS.both)
  t.same(await allNames(both, 'tools'), [...await allNames(dev, 'tools'), 'e__echo', 'e__get-sum'].sort(), 'two roles: the union')

  const nobody = await clientOf(t, gateway, KEYS.nobody)
  t.same([await allNames(nobody, 'tools'), await allNames(nobody, 'resources')], [[], []], 'no role: nothing')
})

test('lists are filtered before they are paged: full pages, and cursors that walk exactly the visible entries', async (t) => {
  const gateway = await gatewayWithRoles(t, 2)
  const dev = await clientOf(t, gateway, KEYS.dev)
  const first = await dev.listTools()
  t.equal(first.tools.length, 2, 'a full page although most tools are hidden')
  t.ok(first.nextCursor)
  const admin = await clientOf(t, gateway, KEYS.admin)
  t.same(await allNames(dev, 'tools'), (await allNames(admin, 'tools')).filter(n => !n.startsWith('e__get-') && n !== 'e__echo'),
    'the pages add up to exactly what dev sees')
  const reader = await clientOf(t, gateway, KEYS.reader)
  const only = await reader.listTools()
  t.same([only.tools.length, only.nextCursor], [2, undefined], 'no cursor when nothing visible follows')
})

test('REST, the WebSocket envelope and the admin API follow the same policy', async (t) => {
  const gateway = await gatewayWithRoles(t)
  const rest = (path: string, key: string, body: unknown) => fetch(gateway.base + path, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify(body)
  })
  const listed = await (await rest('/mcp/tools/list', KEYS.reader, {})).json() as { tools: Array<{ name: string }> }
  t.same(listed.tools.map(x => x.name), ['e__echo', 'e__get-sum'], 'REST list')
  const refused = await rest('/mcp/tools/call', KEYS.reader, { name: 'e__get-env', arguments: {} })
  t.equal(refused.status, 404, 'REST call of a hidden tool: 404 as for an unknown one')
  t.match(await refused.json(), { code: 'MCPGW_ERR_UNKNOWN_TOOL' })
  t.equal((await rest('/mcp/tools/call', KEYS.reader, { name: 'e__echo', arguments: { message: 'r' } })).status, 200)

  // The envelope names an upstream, not a tool: only for callers who see everything.
  const envelope = async (key: string) => {
    const socket = new WebSocket(gateway.base.replace('http:', 'ws:') + '/ws', { headers: { 'x-api-key': key } })
    t.teardown(() => socket.close())
    await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })
    // The answer is the envelope of type "response"; notifications (list_changed, …) may come first.
    const answer = new Promise<{ type: string, data: { error?: { message: string }, tools?: unknown[] } }>(resolve => {
      socket.on('message', (raw) => {
        const message = JSON.parse(String(raw)) as { type?: string, data: { error?: { message: string }, tools?: unknown[] } }
        if (message.type === 'response') resolve(message as { type: string, data: { error?: { message: string }, tools?: unknown[] } })
      })
    })
    socket.send(JSON.stringify({ type: 'message', target: 'e', id: 1, data: { method: 'tools/list' } }))
    return answer
  }
  t.match((await envelope(KEYS.dev)).data, { error: { message: /Unknown target "e"/ } }, 'dev: refused as an unknown target')
  t.ok((await envelope(KEYS.admin)).data.tools, 'a role with admin: true may')

  const admin = (key?: string) => fetch(gateway.base + '/admin/servers', { headers: key === undefined ? {} : { 'x-api-key': key } })
  t.equal((await admin()).status, 401, 'admin API without a credential')
  t.equal((await admin(KEYS.dev)).status, 403, 'admin API for a principal without an admin role')
  t.equal((await admin(KEYS.admin)).status, 200, 'admin API for a role with admin: true (no admin key configured)')
})

test('a key naming a role that is not defined is a configuration error', async (t) => {
  t.throws(() => resolveConfig({
    auth: { apiKeys: [{ name: 'a', key: 'k'.repeat(16), roles: ['dev', 'typo'] }], roles: { dev: {} } }
  }, { envOverrides: false, source: 'test' }), { message: /auth\.apiKeys\[0\]\.roles: "typo" not defined in auth\.roles/ })
})
