import { test } from 'tap'
import { assignNames, fitName, globMatcher, NAME_LIMIT, type NameRequest, sanitizeName, shortHash } from '../../src/naming.js'

const always = { prefixMode: 'always', separator: '__' } as const
const conditional = { prefixMode: 'conditional', separator: '__' } as const
const never = { prefixMode: 'never', separator: '__' } as const

const VALID = /^[A-Za-z0-9_-]{1,64}$/

test('shortHash is a stable lowercase hex digest of the requested length', async (t) => {
  t.equal(shortHash('github\0search'), shortHash('github\0search'))
  t.match(shortHash('x'), /^[0-9a-f]{8}$/)
  t.match(shortHash('x', 12), /^[0-9a-f]{12}$/)
  t.not(shortHash('a'), shortHash('b'))
  t.equal(shortHash('x', 4), shortHash('x').slice(0, 4), 'a shorter hash is a prefix of the longer one')
})

test('sanitizeName replaces every character outside [A-Za-z0-9_-] with "_"', async (t) => {
  t.equal(sanitizeName('read_file-v2'), 'read_file-v2')
  t.equal(sanitizeName('files.read'), 'files_read')
  t.equal(sanitizeName('a b/c:d'), 'a_b_c_d')
  t.equal(sanitizeName('héllo'), 'h_llo')
  t.equal(sanitizeName('🙂x'), '__x', 'an astral character is two UTF-16 units, so two underscores')
  t.equal(sanitizeName(''), '')
})

test('fitName keeps short names, hashes long or empty ones', async (t) => {
  t.equal(fitName('search', 'svc\0search'), 'search')
  t.equal(fitName('a.b', 'svc\0a.b'), 'a_b')

  const exact = 'x'.repeat(NAME_LIMIT)
  t.equal(fitName(exact, 'id'), exact, 'exactly 64 characters is kept')

  const long = 'y'.repeat(NAME_LIMIT + 1)
  const fitted = fitName(long, 'svc\0long')
  t.equal(fitted.length, NAME_LIMIT)
  t.equal(fitted, 'y'.repeat(55) + '_' + shortHash('svc\0long'), 'a readable start, then "_" and the hash of the identity')
  t.match(fitted, VALID)
  t.equal(fitName(long, 'svc\0long'), fitted, 'same input, same name')
  t.not(fitName(long, 'other\0long'), fitted, 'another identity, another name')

  const empty = fitName('', 'svc\0')
  t.equal(empty, '_' + shortHash('svc\0'), 'an empty name still becomes a valid one')
  t.match(empty, VALID)
})

test('prefix mode "always" prefixes every name with the sanitized service and the separator', async (t) => {
  const { names, collisions } = assignNames([
    { service: 'github', original: 'search' },
    { service: 'my.fs', original: 'read.file' }
  ], always)
  t.same(names, ['github__search', 'my_fs__read_file'])
  t.same(collisions, [])
})

test('the separator is configurable', async (t) => {
  const { names } = assignNames([{ service: 'github', original: 'search' }], { prefixMode: 'always', separator: '-' })
  t.same(names, ['github-search'])
})

test('prefix mode "never" uses the upstream names as they are', async (t) => {
  const { names, collisions } = assignNames([
    { service: 'github', original: 'search' },
    { service: 'fs', original: 'read' }
  ], never)
  t.same(names, ['search', 'read'])
  t.same(collisions, [])
})

test('prefix mode "conditional" prefixes only names that several services share', async (t) => {
  const { names, collisions } = assignNames([
    { service: 'a', original: 'search' },
    { service: 'a', original: 'only_a' },
    { service: 'b', original: 'search' },
    { service: 'b', original: 'only_b' }
  ], conditional)
  t.same(names, ['a__search', 'only_a', 'b__search', 'only_b'])
  t.same(collisions, [])
})

test('prefix mode "conditional" does not prefix a name one service lists twice', async (t) => {
  const { names, collisions } = assignNames([
    { service: 'a', original: 'dup' },
    { service: 'a', original: 'dup' }
  ], conditional)
  t.equal(names[0], 'dup')
  t.equal(names[1], 'dup_' + shortHash('a\0dup'))
  t.equal(collisions.length, 1)
})

test('a rename is used verbatim and never prefixed, in every mode', async (t) => {
  for (const options of [always, conditional, never]) {
    const { names } = assignNames([
      { service: 'github', original: 'search_issues', rename: 'find_issues' },
      { service: 'jira', original: 'search_issues' }
    ], options)
    t.equal(names[0], 'find_issues', options.prefixMode)
  }
  const { names } = assignNames([
    { service: 'github', original: 'search_issues', rename: 'find_issues' },
    { service: 'jira', original: 'search_issues' }
  ], conditional)
  t.equal(names[1], 'search_issues', 'a renamed tool does not make its original name shared in conditional mode')
})

test('prefixed names that are too long end in a stable hash and fit in 64 characters', async (t) => {
  const service = 'a-very-long-service-name-for-testing'
  const original = 'an_equally_long_tool_name_that_goes_on_and_on'
  const requests: NameRequest[] = [{ service, original }]
  const first = assignNames(requests, always).names[0] as string
  t.equal(first.length, NAME_LIMIT)
  t.match(first, VALID)
  t.ok(first.startsWith(service + '__an_equally'), 'keeps a readable start')
  t.equal(first, (service + '__' + original).slice(0, 55) + '_' + shortHash(service + '\0' + original))
  t.equal(assignNames(requests, always).names[0], first, 'same input, same name')

  const other = assignNames([{ service, original: original + '_x' }], always).names[0] as string
  t.not(other, first, 'names differing past the cut still differ')
  t.equal(other.length, NAME_LIMIT)
})

test('different services whose long names truncate alike get different names', async (t) => {
  const tool = 't'.repeat(80)
  const { names, collisions } = assignNames([
    { service: 'alpha', original: tool },
    { service: 'beta', original: tool }
  ], never)
  t.not(names[0], names[1])
  for (const name of names) {
    t.equal(name.length, NAME_LIMIT)
    t.match(name, VALID)
  }
  t.same(collisions, [], 'the identity hash keeps them apart without a collision')
})

test('a collision keeps the first holder and renames the later one with a hashed suffix', async (t) => {
  const { names, collisions } = assignNames([
    { service: 'a', original: 'search' },
    { service: 'b', original: 'search' }
  ], never)
  t.equal(names[0], 'search')
  t.equal(names[1], 'search_' + shortHash('b\0search'))
  t.same(collisions, [{
    name: 'search',
    kept: { service: 'a', original: 'search' },
    renamed: { service: 'b', original: 'search', name: names[1] }
  }])
})

test('names that only collide after sanitizing are reported too', async (t) => {
  const { names, collisions } = assignNames([
    { service: 'a', original: 'read.file' },
    { service: 'b', original: 'read_file' }
  ], never)
  t.equal(names[0], 'read_file')
  t.equal(names[1], 'read_file_' + shortHash('b\0read_file'))
  t.equal(collisions.length, 1)
  t.same(collisions[0]?.kept, { service: 'a', original: 'read.file' })
})

test('a rename that takes an existing name is a collision, and nothing is dropped', async (t) => {
  const { names, collisions } = assignNames([
    { service: 'a', original: 'search' },
    { service: 'b', original: 'lookup', rename: 'search' }
  ], never)
  t.equal(names.length, 2)
  t.equal(names[0], 'search')
  t.equal(names[1], 'search_' + shortHash('b\0lookup'))
  t.same(collisions, [{
    name: 'search',
    kept: { service: 'a', original: 'search' },
    renamed: { service: 'b', original: 'lookup', name: names[1] }
  }])
})

test('collision resolution is deterministic and every name ends up unique', async (t) => {
  const requests: NameRequest[] = [
    { service: 'a', original: 'x' },
    { service: 'b', original: 'x' },
    { service: 'c', original: 'x' },
    // takes the name c's hashed suffix would have had, forcing a second attempt
    { service: 'd', original: 'y', rename: 'x_' + shortHash('c\0x') }
  ]
  const once = assignNames(requests, never)
  const twice = assignNames(requests, never)
  t.same(once, twice)
  t.equal(new Set(once.names).size, once.names.length, 'no two requests share a name')
  t.equal(once.collisions.length, 3, 'b, c, and the rename that takes the fallback name of c')
  for (const name of once.names) t.match(name, VALID)

  const reordered = [requests[3], requests[0], requests[1], requests[2]] as NameRequest[]
  const second = assignNames(reordered, never)
  t.equal(second.names[0], 'x_' + shortHash('c\0x'), 'the first holder keeps the name')
  t.equal(new Set(second.names).size, 4)
  const cName = second.names[3] as string
  t.not(cName, 'x_' + shortHash('c\0x'))
  t.equal(cName, 'x_' + shortHash('c\0x2'), 'a second hash attempt when the first suffix is taken')
  t.match(cName, VALID)
})

test('the order of requests decides who keeps a name', async (t) => {
  const a = { service: 'a', original: 'search' }
  const b = { service: 'b', original: 'search' }
  t.same(assignNames([a, b], never).names, ['search', 'search_' + shortHash('b\0search')])
  t.same(assignNames([b, a], never).names, ['search', 'search_' + shortHash('a\0search')])
})

test('an empty request list gives no names and no collisions', async (t) => {
  t.same(assignNames([], always), { names: [], collisions: [] })
})

test('globMatcher matches exact names and "*" wildcards', async (t) => {
  const match = globMatcher(['read_file', 'git_*', '*_admin', 'a*b*c'])
  t.ok(match('read_file'))
  t.notOk(match('read_files'), 'exact patterns are anchored')
  t.notOk(match('xread_file'))
  t.ok(match('git_'), '"*" matches an empty run')
  t.ok(match('git_status'))
  t.notOk(match('gitstatus'))
  t.ok(match('delete_admin'))
  t.notOk(match('admin'))
  t.ok(match('abc'))
  t.ok(match('a-x-b-y-c'))
  t.notOk(match('a-x-c-y-b'))
})

test('globMatcher treats regular-expression characters literally', async (t) => {
  const match = globMatcher(['files.read*', 'a+b', 'q?'])
  t.ok(match('files.read'))
  t.ok(match('files.readAll'))
  t.notOk(match('filesXread'), '"." is not a wildcard')
  t.ok(match('a+b'))
  t.notOk(match('aab'))
  t.ok(match('q?'))
  t.notOk(match('q'))
})

test('globMatcher with "*" matches everything, with no patterns nothing', async (t) => {
  t.ok(globMatcher(['*'])('anything'))
  t.ok(globMatcher(['*'])(''))
  t.notOk(globMatcher([])('anything'))
})
