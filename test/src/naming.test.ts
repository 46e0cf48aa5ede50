import { test } from 'tap'
import { candidateName, collisionName, fitName, globMatcher, NAME_LIMIT, sanitizeName, shortHash } from '../../src/naming.js'

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

test('candidateName: a rename as given, else the upstream name, prefixed when asked, fitted', async (t) => {
  t.equal(candidateName('github', 'search', undefined, true, '__'), 'github__search')
  t.equal(candidateName('my.fs', 'read.file', undefined, true, '-'), 'my_fs-read_file')
  t.equal(candidateName('github', 'search', undefined, false, '__'), 'search')
  t.equal(candidateName('github', 'search', 'find', true, '__'), 'find', 'a rename is never prefixed')
  t.equal(candidateName('s', 'x'.repeat(80), undefined, false, '__').length, NAME_LIMIT)
})

test('collisionName keeps a readable start and adds the hash of the identity; later attempts hash again', async (t) => {
  t.equal(collisionName('search', 'b\0search'), 'search_' + shortHash('b\0search'))
  t.equal(collisionName('search', 'b\0search', 2), 'search_' + shortHash('b\0search2'))
  t.equal(collisionName('x'.repeat(64), 'id').length, NAME_LIMIT)
  t.equal(collisionName('x'.repeat(64), 'id', 3).length, NAME_LIMIT - 3)
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

test('regression: globMatcher is linear, whatever the stars and the name', async (t) => {
  const match = globMatcher(['*_*_*_*_*_*_export'])
  const started = process.hrtime.bigint()
  t.notOk(match('_'.repeat(20_000)))
  t.ok(match('a_b_c_d_e_f_export'))
  t.notOk(match('a_b_c_d_e_export'), 'every part, in order')
  t.ok(Number(process.hrtime.bigint() - started) / 1e6 < 1000, 'a hostile name fails fast')
  t.notOk(globMatcher(['ab*ba'])('aba'), 'a prefix and a suffix may not overlap')
})
