import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type Test } from 'tap'
import { ANONYMOUS } from '../../src/client-context.js'
import type { ForwardedCall } from '../../src/forwarder.js'
import { silentLogger } from '../../src/logger.js'
import { RawResult } from '../../src/raw-result.js'
import { type CacheObserver, ResultCache } from '../../src/result-cache.js'
import { FileLayer } from '../../src/result-cache/file-layer.js'

/**
 * The result cache's hooks over the memory and file layers, with calls as the forwarder makes them: resource reads
 * cached per the service's rule and made stale by the marks; a file hit filling memory; corrupt files and errors
 * never answering; the directives for resources; each layer's figures and what the observer hears.
 */

const RULE = { ttlMs: 60_000, force: false }

function call (method: string, params: Record<string, unknown>, name?: string): ForwardedCall {
  const target = { service: 'docs', method, params, name, idempotent: true, readOnly: true, upstream: undefined }
  return { ...target, context: ANONYMOUS, origin: undefined, cancel: undefined, onProgress: undefined, tried: undefined, refused: undefined, hedged: false, on: undefined, trace: undefined }
}

const read = (uri: string, meta?: Record<string, unknown>) => call('resources/read', { uri, ...(meta !== undefined ? { _meta: meta } : {}) })
const tool = (args: Record<string, unknown>) => call('tools/call', { name: 'search', arguments: args }, 'docs__search')

async function directory (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-result-cache-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function cache (options: { file?: FileLayer, resources?: boolean, observer?: CacheObserver } = {}): ResultCache {
  return new ResultCache({
    maxBytes: 1024 * 1024,
    ruleFor: () => RULE,
    resourceRuleFor: (service) => service === 'docs' && options.resources !== false ? RULE : undefined,
    scopeOf: () => 'all',
    listingOf: () => 'listing-1',
    readOnly: () => true,
    file: options.file,
    observer: options.observer
  })
}

/** One call through the hooks: the cache's answer, or `upstream`'s (then stored). */
async function through (c: ResultCache, forwarded: ForwardedCall, upstream: unknown): Promise<unknown> {
  const answer = await c.preCall(ANONYMOUS, forwarded)
  if (answer !== undefined) return (answer as RawResult).value
  c.onResult(ANONYMOUS, forwarded, upstream)
  return upstream
}

const contents = (text: string) => ({ contents: [{ uri: 'docs://a', text }] })

test('resource reads: cached per the service\'s rule, stale after resources/updated or a list change', async (t) => {
  const c = cache()
  t.same(await through(c, read('docs://a'), contents('v1')), contents('v1'))
  t.same(await through(c, read('docs://a'), contents('v2')), contents('v1'), 'a hit')
  t.same(await through(c, read('docs://b'), contents('b1')), contents('b1'), 'another URI: its own entry')
  c.resourceUpdated('docs', 'docs://a')
  t.same(await through(c, read('docs://a'), contents('v2')), contents('v2'), 'updated: asked again')
  t.same(await through(c, read('docs://b'), contents('b2')), contents('b1'), 'the other URI is still good')
  t.same(await through(c, read('docs://a'), contents('v3')), contents('v2'), 'and the new read is cached')
  await new Promise(resolve => setTimeout(resolve, 2))
  c.resourcesChanged('docs', true)
  t.same(await through(c, read('docs://b'), contents('b3')), contents('b3'), 'the list changed: every URI of the service is read again')
  c.resourceUpdated('elsewhere', 'docs://b')
  t.same(await through(c, read('docs://b'), contents('b4')), contents('b3'), 'another service\'s update is not its business')

  t.same(await through(c, read('docs://a', { 'fastify-mcp-gateway/cache': 'bypass' }), contents('v4')), contents('v4'), 'bypass: the upstream answers')
  t.same(await through(c, read('docs://a'), contents('v5')), contents('v4'), 'and refreshed the entry')
  const noStore = read('docs://c', { 'fastify-mcp-gateway/cache': 'no-store', progressToken: 1 })
  t.same(await through(c, noStore, contents('c1')), contents('c1'))
  t.same(noStore.params._meta, { progressToken: 1 }, 'the directive does not go upstream')
  t.same(await through(c, read('docs://c'), contents('c2')), contents('c2'), 'no-store: nothing kept')
  const off = cache({ resources: false })
  await through(off, read('docs://a'), contents('v1'))
  t.same(await through(off, read('docs://a'), contents('v2')), contents('v2'), 'a service whose rule does not say resources: not cached')
  t.equal(await off.preCall(ANONYMOUS, call('resources/read', { uri: 42 })), undefined, 'a URI that is not a string: not cached')
})

test('the file layer answers what memory lost, fills memory, and never keeps errors', async (t) => {
  const dir = await directory(t)
  const layer = (): FileLayer => new FileLayer({ dir, maxDirBytes: 1024 * 1024, maxEntryBytes: 64 * 1024, log: silentLogger })
  const seen: string[] = []
  const observer: CacheObserver = { hit () {}, miss () {}, stored () {}, layer: (name, outcome) => { seen.push(`${name} ${outcome}`) } }
  const first = cache({ file: layer() })
  await first.start()
  const result = { content: [{ type: 'text', text: 'found' }] }
  await through(first, tool({ q: 1 }), result)
  await through(first, tool({ q: 'error' }), { content: [], isError: true })
  await through(first, tool({ q: 'raw error' }), RawResult.match('{"result":{"content":[],"isError":true},"jsonrpc":"2.0","id":3}')?.result)
  await through(first, read('docs://a'), contents('kept before the restart'))
  await first.close()
  t.equal((await readdir(dir)).length, 1, 'the good tool result on disk: no error, no resource read')

  const second = cache({ file: layer(), observer })
  await second.start()
  t.same(await through(second, tool({ q: 1 }), { content: [] }), result, 'from the directory')
  t.same(seen, ['memory miss', 'file hit'])
  t.same(await through(second, tool({ q: 1 }), { content: [] }), result, 'then from memory')
  t.same(seen.slice(2), ['memory hit'])
  t.same(await through(second, tool({ q: 'error' }), { content: [{ type: 'text', text: 'fine now' }] }), { content: [{ type: 'text', text: 'fine now' }] })
  t.same(await through(second, read('docs://a'), contents('read after the restart')), contents('read after the restart'),
    'resource reads are not kept across a restart: updates were not heard meanwhile')
  t.match(second.figures(), { hits: 2, misses: 2, layers: { memory: { hits: 1, misses: 3 }, file: { hits: 1, misses: 1 } } })
  t.notOk('redis' in second.figures().layers)
  t.same(second.status(), { layers: ['memory', 'file'] })
  await second.close()

  for (const name of await readdir(dir)) await writeFile(join(dir, name), 'mcp-gateway-cache 1 ' + name + '\n9999999999999 9999999999998\n{"not":"closed"')
  const third = cache({ file: layer() })
  await third.start()
  t.same(await through(third, tool({ q: 1 }), { content: [{ type: 'text', text: 'asked' }] }), { content: [{ type: 'text', text: 'asked' }] },
    'a corrupt file is a miss')
})
