import { test } from 'tap'
import { request } from 'undici'
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ElicitResultSchema, ListRootsRequestSchema, LoggingMessageNotificationSchema
} from '@modelcontextprotocol/sdk/types.js'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { connectClient, everythingStdio, startEverythingHttp, startGateway, waitFor } from '../helper.js'
import { sleep, startHttpFixture } from '../fixtures/mcp-server.js'

/**
 * What servers ask of clients, through the gateway: sampling, elicitation and roots requests reach the client whose
 * call caused them and its answers go back; progress arrives in order; cancellation stops the upstream; a client
 * that did not declare a capability makes the upstream fail cleanly, never hang. Real peers: server-everything over
 * Streamable HTTP (a session per client) and over stdio (one session shared by all clients).
 */

const ALL = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } }

function answerEverything (client: Client, name: string) {
  const seen = { sampling: 0, elicitation: 0, roots: 0 }
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    seen.sampling++
    const text = (request.params.messages[0]?.content as { text?: string }).text
    return { model: `model-of-${name}`, role: 'assistant', content: { type: 'text', text: `${name} saw: ${text}` }, stopReason: 'endTurn' }
  })
  client.setRequestHandler(ElicitRequestSchema, async () => {
    seen.elicitation++
    return { action: 'decline' }
  })
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    seen.roots++
    return { roots: [{ uri: `file:///home/${name}`, name }] }
  })
  return seen
}

const text = (result: unknown) => ((result as { content: Array<{ text?: string }> }).content[0]?.text ?? '')

test('sampling, elicitation and roots reach the client and its answers reach the upstream', async (t) => {
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { servers: [{ id: 'http', url: everything.url }, everythingStdio('stdio')] })
  const client = await connectClient(t, gateway.mcp, ALL)
  const seen = answerEverything(client, 'alice')

  for (const service of ['http', 'stdio']) {
    const sampled = await client.callTool({ name: `${service}__trigger-sampling-request`, arguments: { prompt: 'hello' } })
    t.match(text(sampled), /model-of-alice/, `${service}: the sampling request reached the client and its answer came back`)
    t.match(text(sampled), /alice saw: .*hello/)

    const elicited = await client.callTool({ name: `${service}__trigger-elicitation-request`, arguments: {} })
    t.match(text(elicited), /declined/i, `${service}: the elicitation was answered by the client`)
  }
  t.equal(seen.sampling, 2)
  t.equal(seen.elicitation, 2)

  await waitFor('the HTTP upstream to ask the client for its roots', () => seen.roots > 0)
  const roots = await client.callTool({ name: 'http__get-roots-list', arguments: {} })
  t.match(text(roots), /file:\/\/\/home\/alice/, 'the upstream received the client\'s roots')
})

test('a client that did not declare a capability gets a clean failure, never a hang', async (t) => {
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { servers: [{ id: 'http', url: everything.url }, everythingStdio('stdio')] })
  const plain = await connectClient(t, gateway.mcp, {})

  const viaOwnSession = await plain.callTool({ name: 'http__trigger-sampling-request', arguments: { prompt: 'x' } })
    .then(result => ({ result }), (err: Error) => ({ err }))
  t.ok('err' in viaOwnSession || (viaOwnSession.result as { isError?: boolean }).isError === true,
    'over its own session the upstream never offered the tool to this client, so the call fails')

  const viaShared = await plain.callTool({ name: 'stdio__trigger-sampling-request', arguments: { prompt: 'x' } })
    .then(result => ({ result }), (err: Error) => ({ err }))
  const failure = 'err' in viaShared ? viaShared.err.message : text(viaShared.result)
  t.ok('err' in viaShared || (viaShared.result as { isError?: boolean }).isError === true, 'over the shared session it fails too')
  t.match(failure, /did not declare the sampling capability/, 'and says why')
})

test('progress arrives in order; a cancelled call stops upstream', async (t) => {
  let aborted = 0
  const fixture = await startHttpFixture(t, {
    name: 'fx',
    tools: [{
      name: 'wait',
      handler: async (_, signal) => {
        await sleep(30_000, signal)
        if (signal.aborted) aborted++
        return { content: [{ type: 'text', text: 'finished' }] }
      }
    }]
  })
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { servers: [{ id: 'http', url: everything.url }, everythingStdio('stdio'), { id: 'fx', url: fixture.url }] })
  const client = await connectClient(t, gateway.mcp, {})

  for (const service of ['http', 'stdio']) {
    const progress: number[] = []
    const result = await client.callTool({ name: `${service}__trigger-long-running-operation`, arguments: { duration: 1, steps: 4 } }, undefined, {
      onprogress: (p) => { progress.push(p.progress) }
    })
    t.match(text(result), /Long running operation completed/)
    // The SDK client may drop the very last tick (it races the response); the ones it delivers are in order.
    t.ok(progress.length >= 3, `${service}: ${progress.length} progress notifications arrived`)
    t.same(progress, [1, 2, 3, 4].slice(0, progress.length), `${service}: in order, with the client's own token`)
  }

  const controller = new AbortController()
  const call = client.callTool({ name: 'fx__wait', arguments: {} }, undefined, { signal: controller.signal })
    .then(() => 'completed', (err: Error) => err.message)
  await waitFor('the call to reach the upstream', () => fixture.calls.length === 1)
  controller.abort('the user changed their mind')
  t.match(await call, /changed their mind|abort/i, 'the client sees its own cancellation')
  await waitFor('the upstream handler to be aborted', () => aborted === 1)
  t.pass('notifications/cancelled reached the upstream and stopped its work')
})

test('two clients at once each get only their own requests and progress', async (t) => {
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { servers: [{ id: 'http', url: everything.url }, everythingStdio('stdio')] })
  const alice = await connectClient(t, gateway.mcp, ALL)
  const bob = await connectClient(t, gateway.mcp, ALL)
  const aliceSeen = answerEverything(alice, 'alice')
  const bobSeen = answerEverything(bob, 'bob')

  const [a, b] = await Promise.all([
    alice.callTool({ name: 'http__trigger-sampling-request', arguments: { prompt: 'from alice' } }),
    bob.callTool({ name: 'http__trigger-sampling-request', arguments: { prompt: 'from bob' } })
  ])
  t.match(text(a), /alice saw: .*from alice/, 'alice\'s sampling request went to alice')
  t.match(text(b), /bob saw: .*from bob/, 'bob\'s to bob')
  t.equal(aliceSeen.sampling, 1)
  t.equal(bobSeen.sampling, 1)

  const aliceProgress: number[] = []
  const bobProgress: number[] = []
  await Promise.all([
    alice.callTool({ name: 'http__trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
      onprogress: (p) => { aliceProgress.push(p.progress) }
    }),
    bob.callTool({ name: 'stdio__trigger-long-running-operation', arguments: { duration: 1.5, steps: 5 } }, undefined, {
      onprogress: (p) => { bobProgress.push(p.progress) }
    })
  ])
  t.ok(aliceProgress.length >= 2 && aliceProgress.every(p => p <= 3), `alice got her 3-step progress (${aliceProgress})`)
  t.ok(bobProgress.length >= 4 && bobProgress.every(p => p <= 5), `bob got his 5-step progress (${bobProgress})`)
})

test('logging/setLevel is fanned out and log messages name their service', async (t) => {
  const fixture = await startHttpFixture(t, {
    name: 'fx',
    tools: [{ name: 'hello' }]
  })
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: fixture.url }, { id: 'http', url: everything.url }] })
  const client = await connectClient(t, gateway.mcp, {})
  t.ok(client.getServerCapabilities()?.logging, 'logging is advertised because an upstream has it')
  const messages: Array<{ level: string, logger?: string }> = []
  client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => { messages.push(n.params as { level: string, logger?: string }) })
  t.same(await client.setLoggingLevel('debug'), {}, 'setLevel answers an empty result')
  await client.callTool({ name: 'http__toggle-simulated-logging', arguments: {} })
  await waitFor('a log message from server-everything', () => messages.length > 0, 20_000)
  t.match(messages[0], { logger: /^http/ }, 'the service is named in the logger')
  await client.callTool({ name: 'http__toggle-simulated-logging', arguments: {} })
})

test('URL-mode elicitation: the request path, and the -32042 error path, reach the client intact', async (t) => {
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { servers: [{ id: 'http', url: everything.url }] })
  const client = await connectClient(t, gateway.mcp, { elicitation: { form: {}, url: {} } })
  const asked: Array<Record<string, unknown>> = []
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params as Record<string, unknown>)
    return { action: 'accept' }
  })
  const accepted = await client.callTool({ name: 'http__trigger-url-elicitation', arguments: { url: 'https://example.com/login', elicitationId: 'e-1' } })
  t.match(text(accepted), /User completed the URL elicitation flow/)
  t.match(asked[0], { mode: 'url', url: 'https://example.com/login', elicitationId: 'e-1' }, 'the client saw the URL request unchanged')

  const required = await client.callTool({ name: 'http__trigger-url-elicitation', arguments: { url: 'https://example.com/other', errorPath: true } })
    .then(() => undefined, (err: { code?: number, data?: { elicitations?: Array<Record<string, unknown>> } }) => err)
  t.equal(required?.code, -32042, 'URLElicitationRequiredError is forwarded with its code')
  t.match(required?.data?.elicitations?.[0], { mode: 'url', url: 'https://modelcontextprotocol.io' }, 'and its data')
})

test('two clients each get only their own elicitation requests; roots changes reach the upstream', async (t) => {
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { servers: [{ id: 'http', url: everything.url }] })
  const alice = await connectClient(t, gateway.mcp, ALL)
  const bob = await connectClient(t, gateway.mcp, ALL)
  const aliceSeen = answerEverything(alice, 'alice')
  const bobSeen = answerEverything(bob, 'bob')
  await Promise.all([
    alice.callTool({ name: 'http__trigger-elicitation-request', arguments: {} }),
    alice.callTool({ name: 'http__trigger-elicitation-request', arguments: {} }),
    bob.callTool({ name: 'http__trigger-elicitation-request', arguments: {} })
  ])
  t.equal(aliceSeen.elicitation, 2, 'alice answered her two')
  t.equal(bobSeen.elicitation, 1, 'bob answered his one')

  await waitFor('the upstream to ask alice for roots', () => aliceSeen.roots >= 1)
  const before = aliceSeen.roots
  await alice.sendRootsListChanged()
  await waitFor('the upstream to ask alice again after roots/list_changed', () => aliceSeen.roots > before)
  t.pass('notifications/roots/list_changed reached the upstream, which asked alice again')
})

test('an upstream that withdraws its request cancels it at the client', async (t) => {
  const fixture = await startHttpFixture(t, {
    name: 'fx',
    tools: [{
      name: 'impatient',
      handler: async (_args, _signal, extra) => {
        const answer = await extra.sendRequest({ method: 'elicitation/create', params: { message: 'quick!', requestedSchema: { type: 'object', properties: {} } } },
          ElicitResultSchema, { timeout: 300 }).then(() => 'answered', (err: Error) => err.message)
        return { content: [{ type: 'text', text: answer }] }
      }
    }]
  })
  const gateway = await startGateway(t, { servers: [{ id: 'fx', url: fixture.url }] })
  const client = await connectClient(t, gateway.mcp, { elicitation: {} })
  let withdrawn = false
  client.setRequestHandler(ElicitRequestSchema, async (_request, extra) => {
    await new Promise<void>((resolve) => extra.signal.addEventListener('abort', () => resolve(), { once: true }))
    withdrawn = true
    return { action: 'cancel' }
  })
  const result = await client.callTool({ name: 'fx__impatient', arguments: {} })
  t.match(text(result), /timed out|timeout/i, 'the upstream gave up on its own request')
  await waitFor('the client to see the request withdrawn', () => withdrawn)
  t.pass('notifications/cancelled from the upstream reached the client under the id the client knew')
})

test('a request from a shared (stdio) upstream travels on the answer stream of the call that caused it', async (t) => {
  const gateway = await startGateway(t, { servers: [everythingStdio('stdio')] })
  const post = (body: unknown, headers: Record<string, string> = {}) => request(gateway.mcp, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body)
  })
  const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: { sampling: {} }, clientInfo: { name: 'raw', version: '1' } } })
  await init.body.dump()
  const sessionId = init.headers['mcp-session-id'] as string
  const call = await post({ jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'stdio__trigger-sampling-request', arguments: { prompt: 'p' } } }, { 'mcp-session-id': sessionId })
  t.match(call.headers['content-type'], /text\/event-stream/, 'a client that can be asked gets its call answered as a stream')
  let text = ''
  let answered = false
  for await (const chunk of call.body) {
    text += (chunk as Buffer).toString()
    const asked = /data: (\{[^\n]*"method":"sampling\/createMessage"[^\n]*\})/.exec(text)
    if (asked !== null && !answered) {
      answered = true
      const id = JSON.parse(asked[1] as string).id
      const reply = await post({ jsonrpc: '2.0', id, result: { model: 'raw-model', role: 'assistant', content: { type: 'text', text: 'raw answer' }, stopReason: 'endTurn' } }, { 'mcp-session-id': sessionId })
      t.equal(reply.statusCode, 202, 'the client\'s answer is accepted')
      await reply.body.dump()
    }
  }
  t.ok(answered, 'the sampling request arrived on the call\'s own stream')
  const last = JSON.parse([...text.matchAll(/^data: (.+)$/gm)].at(-1)?.[1] as string)
  t.equal(last.id, 'call-1')
  t.match(last.result.content[0].text, /raw-model/, 'and the call completed with the client\'s answer')
})
