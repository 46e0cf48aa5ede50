import { test } from 'tap'
import { CallsInFlight } from '../../src/calls-in-flight.js'
import { Cancellation } from '../../src/cancellation.js'

test('calls are counted and cancelled by id; an id reused while in flight keeps every call under it', async (t) => {
  const calls = new CallsInFlight()
  const [a, b, c, d] = [new Cancellation(), new Cancellation(), new Cancellation(), new Cancellation()]
  calls.add(1, a)
  calls.add(1, b)
  calls.add(1, c)
  calls.add('x', d)
  t.equal(calls.size, 4, 'reused ids count once per call')
  calls.delete(1, a)
  t.equal(calls.size, 3, 'the first one ended: the next under the id takes its place')
  calls.delete(1, a)
  t.equal(calls.size, 3, 'a call ends once')
  calls.withdraw(1, 'changed my mind')
  t.same([a.requested, b.withdrawn, c.withdrawn, d.requested], [false, true, true, false], 'a cancellation reaches every call under its id')
  calls.delete(1, c)
  calls.delete(1, b)
  t.equal(calls.size, 1)
  calls.withdraw(1, 'nothing left under it')
  calls.cancelAll('the session ended')
  t.equal(d.reason, 'the session ended')
  calls.delete('x', d)
  t.equal(calls.size, 0)
})

test('cancelAll reaches the calls under a reused id too', async (t) => {
  const calls = new CallsInFlight()
  const [a, b] = [new Cancellation(), new Cancellation()]
  calls.add(7, a)
  calls.add(7, b)
  calls.cancelAll('gone')
  t.same([a.reason, b.reason], ['gone', 'gone'])
})
