import { test } from 'tap'
test('x', { todo: 'bug: y' }, async (t) => { console.error('RAN'); t.equal(1, 2) })
test('z', async (t) => { t.equal(1, 2, 'inner', { todo: 'bug: assertion-level' }); t.test('sub', { todo: 'bug: sub' }, async (t) => { console.error('SUBRAN'); t.equal(1, 2) }) })
