import { test } from 'tap'
import { WebSocket } from 'ws'
import { ERR_INVALID_PARAMS } from '../../src/errors.js'
import type { ForwardedCall } from '../../src/forwarder.js'
import { connectClient, startGateway, waitFor } from '../helper.js'
import { startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * The forwarding pipeline the security, limits and cache concerns plug into: one policy for every way a call
 * arrives — an SDK client over Streamable HTTP, a batch, a WebSocket envelope, REST, the programmatic API. The
 * upstream is the SDK-based fixture; the hooks are the test's.
 */

test('preCall and onResult see every call, whatever transport brought it, and can refuse or answer it', async (t) => {
  const upstream = await startHttpFixture(t, { name: 'fx', tools: [{ name: 'echo' }, { name: 'delete_all' }, { name: 'cached' }] })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: upstream.url }] })
  const seen: Array<{ method: string, service: string, name: unknown, protocolVersion: string, principal: unknown }> = []
  const results: unknown[] = []
  gateway.app.mcpProxy.addHooks({
    preCall (context, call: ForwardedCall) {
      seen.push({ method: call.method, service: call.service, name: call.params.name, protocolVersion: context.protocolVersion, principal: context.principal })
      if (call.params.name === 'delete_all') throw new ERR_INVALID_PARAMS('delete_all is not allowed here')
      if (call.params.name === 'cached') return { content: [{ type: 'text', text: 'from the hook' }] }
      return undefined
    },
    onResult (_context, call, result) { results.push([call.params.name, result !== undefined]) }
  })

  const client = await connectClient(t, gateway.mcp)
  t.ok(await client.callTool({ name: 'fx__echo', arguments: {} }))
  await client.callTool({ name: 'fx__delete_all', arguments: {} }).then(() => t.fail('refused'), (err: Error) => t.match(err.message, /delete_all is not allowed here/))
  t.same(await client.callTool({ name: 'fx__cached', arguments: {} }), { content: [{ type: 'text', text: 'from the hook' }] }, 'answered by the hook')
  t.notOk(upstream.calls.some(c => c.tool === 'cached' || c.tool === 'delete_all'), 'neither reached the upstream')

  const rest = await fetch(gateway.base + '/mcp/tools/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'fx__delete_all', arguments: {} }) })
  t.equal(rest.status, 400, 'REST gets the same refusal')

  const socket = new WebSocket(gateway.base.replace('http', 'ws') + '/ws')
  t.teardown(() => socket.close())
  await new Promise(resolve => socket.once('open', resolve))
  const frame = new Promise<{ data: { error?: { message: string } } }>((resolve) => socket.once('message', (data) => resolve(JSON.parse(data.toString()))))
  socket.send(JSON.stringify({ type: 'message', target: 'fx', id: 1, data: { method: 'tools/call', params: { name: 'delete_all', arguments: {} } } }))
  t.match((await frame).data.error?.message, /delete_all is not allowed here/, 'so does a WebSocket envelope addressed to the upstream by id')

  await gateway.app.mcpProxy.callTool('fx__delete_all').then(() => t.fail('programmatic'), (err: Error) => t.match(err.message, /not allowed/, 'and the programmatic API'))
  await waitFor('the hooks to have seen them all', () => seen.length >= 6)
  t.match(seen[0], { method: 'tools/call', service: 'fx', name: 'echo', protocolVersion: '2025-11-25', principal: null }, 'the client context: no principal until authentication')
  t.same(results, [['echo', true]], 'onResult sees what was forwarded and answered')
})
