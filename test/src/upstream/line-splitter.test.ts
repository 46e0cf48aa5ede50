import { test } from 'tap'
import { LineSplitter } from '../../../src/upstream/line-splitter.js'

function splitter (maxLength = 1e9) {
  const lines: string[] = []
  const skipped: string[] = []
  const s = new LineSplitter(line => lines.push(line), maxLength, start => skipped.push(start))
  return { s, lines, skipped }
}

test('lines come out whole, however the chunks cut them; empty lines are dropped', async (t) => {
  const { s, lines } = splitter()
  for (const chunk of ['{"a":', '1}\n{"b"', ':2}\n\n', '{"c":3}', '\n']) s.push(chunk)
  t.same(lines, ['{"a":1}', '{"b":2}', '{"c":3}'])
  s.push('{"d":')
  t.same(lines.length, 3, 'an unfinished line waits for its newline')
})

test('regression: one 16 MB line costs one pass over it, not a rescan per chunk', async (t) => {
  const { s, lines } = splitter()
  const chunk = 'x'.repeat(64 * 1024)
  const started = process.hrtime.bigint()
  for (let i = 0; i < 256; i++) s.push(chunk)
  s.push('\n')
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  t.equal(lines[0]?.length, 256 * chunk.length)
  t.ok(ms < 2000, `split in ${ms.toFixed(0)} ms (the former splitter took 1.4 s)`)
})

test('a line longer than the limit is skipped whole and reported; the next line is read', async (t) => {
  const { s, lines, skipped } = splitter(10)
  s.push('0123456789abc')
  s.push('def\n{"ok":1}\n')
  t.same(lines, ['{"ok":1}'])
  t.same(skipped, ['0123456789abc'])
})
