import { test } from 'tap'
import { EventStore, ReplayBudget } from '../../../src/transport/event-store.js'

/** The per-session event store that Last-Event-ID resumes from: ids, per-stream replay, bounds, dropping. */

test('ids name the stream and a session-wide sequence; replay is per stream', async (t) => {
  const store = new EventStore({ maxEvents: 10, maxBytes: 1000 })
  t.equal(store.add('g', 'a'), 'g.1')
  t.equal(store.add('p1', undefined), 'p1.2', 'a priming event has an id and no data')
  t.equal(store.add('p1', 'b'), 'p1.3')
  t.equal(store.add('g', 'c'), 'g.4')
  t.same(store.after('g', 1).map(e => e.data), ['c'])
  t.same(store.after('p1', 2).map(e => e.data), ['b'])
  t.same(store.after('g', 0).map(e => e.data), ['a', 'c'])
  t.same(store.after('nope', 0), [])
  t.same(EventStore.parseId('p12.34'), { stream: 'p12', seq: 34 })
  t.same(EventStore.parseId('a.b.7'), { stream: 'a.b', seq: 7 })
  for (const bad of ['', 'nodot', '.5', 'g.', 'g.x', 'g.-1', 'g.1.5x']) t.equal(EventStore.parseId(bad), undefined, JSON.stringify(bad))
})

test('the oldest events go first past the event or byte bound; one large event is kept alone', async (t) => {
  const byCount = new EventStore({ maxEvents: 3, maxBytes: 1000 })
  for (const data of ['1', '2', '3', '4', '5']) byCount.add('g', data)
  t.same(byCount.after('g', 0).map(e => e.data), ['3', '4', '5'])

  const byBytes = new EventStore({ maxEvents: 100, maxBytes: 10 })
  byBytes.add('g', 'aaaa')
  byBytes.add('g', 'bbbb')
  byBytes.add('g', 'cccc')
  t.same(byBytes.after('g', 0).map(e => e.data), ['bbbb', 'cccc'])
  byBytes.add('p1', 'x'.repeat(50))
  t.same(byBytes.after('g', 0), [], 'a larger event pushes the others out')
  t.equal(byBytes.after('p1', 0).length, 1, 'but is itself kept, so its stream can be resumed')
})

test('drop forgets a stream that was delivered in full, and its bytes', async (t) => {
  const store = new EventStore({ maxEvents: 100, maxBytes: 20 })
  store.add('p1', 'x'.repeat(15))
  store.add('g', 'note')
  store.drop('p1')
  t.same(store.after('p1', 0), [])
  t.same(store.after('g', 0).map(e => e.data), ['note'])
  store.add('g', 'y'.repeat(15))
  t.same(store.after('g', 0).map(e => e.data), ['note', 'y'.repeat(15)], 'the dropped bytes no longer count against the bound')
})

test('the store compacts itself under long use', async (t) => {
  const store = new EventStore({ maxEvents: 5, maxBytes: 1_000_000 })
  for (let i = 0; i < 5000; i++) store.add('g', String(i))
  t.same(store.after('g', 0).map(e => e.data), ['4995', '4996', '4997', '4998', '4999'])
})

test('regression: a budget bounds the bytes of every store together, the oldest events anywhere going first', async (t) => {
  const budget = new ReplayBudget(100)
  const a = new EventStore({ maxEvents: 100, maxBytes: 1000 }, budget)
  const b = new EventStore({ maxEvents: 100, maxBytes: 1000 }, budget)
  a.add('p1', 'a'.repeat(40))
  b.add('p1', 'b'.repeat(40))
  t.equal(budget.bytes, 80)
  a.add('p2', 'c'.repeat(40))
  t.equal(budget.bytes, 80, 'the oldest event (a\'s first) made room')
  t.same(a.after('p1', 0), [], 'it is gone from its store')
  t.equal(b.after('p1', 0).length, 1)
  b.drop('p1')
  t.equal(budget.bytes, 40, 'what a store drops leaves the budget too')
  const huge = a.add('p3', 'x'.repeat(500))
  t.ok(huge, 'an event larger than the whole budget is kept alone')
  t.equal(a.after('p3', 0).length, 1)
  t.equal(a.after('p2', 0).length, 0, 'everything older went')
  a.clear()
  b.clear()
  t.equal(budget.bytes, 0, 'an ended session gives everything back')
  for (let i = 0; i < 5000; i++) {
    a.add('g', 'y'.repeat(10))
    a.drop('g')
  }
  t.equal(budget.bytes, 0, 'thousands of events kept and dropped leave nothing counted')
  a.add('g', 'z'.repeat(90))
  b.add('g', 'z'.repeat(90))
  t.equal(a.after('g', 0).length, 0, 'and eviction still finds the oldest after the queue was compacted')
  t.equal(budget.bytes, 90)
})

test('regression: an event that leaves its store gives its message back at once, not at the next compaction', async (t) => {
  // 500 sessions holding one abandoned 8 MB answer each kept every answer alive: the evicted entries stayed in arrays
  // that compact only past 1024 entries.
  const budget = new ReplayBudget(1000)
  const stores = [new EventStore({ maxEvents: 10, maxBytes: 10_000 }, budget), new EventStore({ maxEvents: 10, maxBytes: 10_000 }, budget)]
  stores[0]?.add('p1', 'a'.repeat(800))
  const [first] = stores[0]?.after('p1', 0) ?? []
  stores[1]?.add('p1', 'b'.repeat(800))
  t.equal(first?.gone, true, 'the budget made room with the oldest event anywhere')
  t.equal(first?.data, undefined, 'and its message was let go with it')
  const own = new EventStore({ maxEvents: 1, maxBytes: 10_000 })
  own.add('g', 'x')
  const [older] = own.after('g', 0)
  own.add('g', 'y')
  t.same([older?.gone, older?.data], [true, undefined], 'the same for the own bounds of a store')
  own.add('g', 'z')
  own.clear()
  t.same(own.after('g', 0), [])
})
