import { test } from 'tap'
import { ConcurrencyGates, type RefusalReason } from '../../src/balancing/concurrency.js'
import { Cancellation } from '../../src/cancellation.js'

/** Per-upstream concurrency limits: slots, the bounded queue in arrival order, refusals, cancellation, removal. */

const limit = (maxConcurrent: number, size = 2, timeoutMs = 10_000) => ({ id: 'u', maxConcurrent, queue: { size, timeoutMs } })

test('no limit: nothing waits, nothing is kept', async (t) => {
  const gates = new ConcurrencyGates()
  for (let i = 0; i < 100; i++) t.equal(gates.acquire(limit(0)), undefined)
  t.same(gates.figures('u'), { running: 0, queued: 0 })
})

test('beyond maxConcurrent calls wait in order; beyond the queue they are refused at once', async (t) => {
  const refused: RefusalReason[] = []
  const gates = new ConcurrencyGates({ refused: (_id, why) => refused.push(why) })
  t.equal(gates.acquire(limit(1)), undefined, 'a free slot is taken at once')
  const order: string[] = []
  const second = gates.acquire(limit(1))?.then(() => order.push('second'))
  const third = gates.acquire(limit(1))?.then(() => order.push('third'))
  t.same(gates.figures('u'), { running: 1, queued: 2 })
  await t.rejects(gates.acquire(limit(1)) as Promise<void>, { code: 'MCPGW_ERR_UPSTREAM_BUSY', message: /1 calls in flight and 2 waiting/ })
  t.same(refused, ['full'])
  gates.release('u')
  await second
  gates.release('u')
  await third
  t.same(order, ['second', 'third'], 'first come, first served')
  gates.release('u')
  t.same(gates.figures('u'), { running: 0, queued: 0 })
})

test('a call that waits too long is refused; a cancelled one leaves the queue', async (t) => {
  const refused: RefusalReason[] = []
  const gates = new ConcurrencyGates({ refused: (_id, why) => refused.push(why) })
  gates.acquire(limit(1, 5, 30))
  await t.rejects(gates.acquire(limit(1, 5, 30)) as Promise<void>, { code: 'MCPGW_ERR_UPSTREAM_BUSY', message: /within 30 ms/ })
  t.same(refused, ['timeout'])
  const cancel = new Cancellation()
  const waiting = gates.acquire(limit(1, 5), cancel) as Promise<void>
  t.equal(gates.figures('u').queued, 1)
  cancel.cancel('the client went away')
  await t.rejects(waiting, { code: 'MCPGW_ERR_REQUEST_CANCELLED' })
  t.equal(gates.figures('u').queued, 0)
  const queued = gates.acquire(limit(1, 5)) as Promise<void>
  gates.forget('u')
  await t.rejects(queued, { message: /reconfigured or removed while the call waited/ })
  gates.release('u')
})
