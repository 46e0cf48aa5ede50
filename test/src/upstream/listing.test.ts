import { test } from 'tap'
import { silentLogger } from '../../../src/logger.js'
import { listServer } from '../../../src/upstream/listing.js'
import type { UpstreamSession } from '../../../src/upstream/session.js'

/** A session whose tools/list pages are made by `page(n)`: what listServer reads, nothing else. */
function fakeSession (page: (n: number) => { tools: unknown[], nextCursor?: string }) {
  const asked: string[] = []
  const session = {
    initializeResult: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'fake', version: '1' } },
    request: async (method: string, params?: { cursor?: string }) => {
      asked.push(`${method} ${params?.cursor ?? ''}`)
      return page(Number(params?.cursor ?? 0))
    }
  }
  return { session: session as unknown as UpstreamSession, asked }
}

const options = { upstream: 'fake', timeout: 1000, log: silentLogger }

test('every page is read, entries without a name are skipped', async (t) => {
  const { session, asked } = fakeSession((n) => ({ tools: [{ name: `t${n}` }, { nameless: true }], ...(n < 2 ? { nextCursor: String(n + 1) } : {}) }))
  const listing = await listServer(session, options)
  t.same(listing.tools.map(tool => tool.name), ['t0', 't1', 't2'])
  t.same(asked, ['tools/list ', 'tools/list 1', 'tools/list 2'])
})

test('regression: a hostile upstream cannot make the catalog hold more than the listing budget', async (t) => {
  const description = 'd'.repeat(20 * 1024 * 1024)
  const { session, asked } = fakeSession((n) => ({ tools: [{ name: `t${n}`, description }], nextCursor: String(n + 1) }))
  const listing = await listServer(session, options)
  t.ok(listing.tools.length <= 2, `${listing.tools.length} tools kept of endless 20 MB pages`)
  t.ok(asked.length <= 3, `and it stopped asking after ${asked.length} pages`)
})

test('an upstream listing more than 10,000 entries of a kind is cut there', async (t) => {
  const { session } = fakeSession((n) => ({ tools: Array.from({ length: 3000 }, (_, i) => ({ name: `t${n}_${i}` })), nextCursor: String(n + 1) }))
  const listing = await listServer(session, options)
  t.equal(listing.tools.length, 10_000)
})
