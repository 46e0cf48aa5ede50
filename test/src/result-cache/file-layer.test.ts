import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type Test } from 'tap'
import type { Logger } from '../../../src/logger.js'
import { silentLogger } from '../../../src/logger.js'
import { FileLayer, type FileLayerOptions } from '../../../src/result-cache/file-layer.js'

/**
 * The file layer on a real directory: what it writes a restarted layer finds; the directory stays within its bound
 * (oldest out first); expired, corrupt, foreign and oversized files are misses and removed; what is not on disk costs
 * no I/O; an unusable directory is a miss, logged once.
 */

const key = (n: number | string) => createHash('sha256').update(String(n)).digest('base64url')
const entry = (text: string, ttl = 60_000) => ({ text, storedAt: Date.now(), expiresAt: Date.now() + ttl })

async function directory (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-file-layer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function layer (dir: string, options: Partial<FileLayerOptions> = {}): Promise<FileLayer> {
  const files = new FileLayer({ dir, maxDirBytes: 1024 * 1024, maxEntryBytes: 64 * 1024, log: silentLogger, ...options })
  await files.start()
  return files
}

/** Lets the fire-and-forget writes finish. */
const settle = (files: FileLayer) => files.close()

test('entries survive a restart; the index answers misses without I/O', async (t) => {
  const dir = await directory(t)
  const first = await layer(dir)
  first.set(key(1), entry('{"content":[{"type":"text","text":"one"}]}'), 40)
  await settle(first)
  t.equal(first.entries, 1)
  t.equal(first.get(key(2)), undefined, 'a key never written: undefined at once, not a promise')
  const second = await layer(dir)
  t.equal(second.entries, 1, 'the restarted layer indexed the file')
  t.match(await second.get(key(1)), { text: '{"content":[{"type":"text","text":"one"}]}' })
  t.same((await readdir(dir)).filter(n => n.startsWith('.tmp-')), [], 'no temporary file left')
})

test('the directory stays within maxDirBytes, the oldest files going first; big results are not written', async (t) => {
  const dir = await directory(t)
  const changes: number[] = []
  const files = await layer(dir, { maxDirBytes: 3000, maxEntryBytes: 1000, changed: (bytes) => changes.push(bytes) })
  for (let i = 0; i < 6; i++) {
    files.set(key(i), entry(`{"n":"${'x'.repeat(800)}${i}"}`), 810)
    await settle(files)
    // File times tick coarsely (a few ms): the restart below orders the files by them.
    await new Promise(resolve => setTimeout(resolve, 15))
  }
  t.ok(files.bytes <= 3000, `within the bound (${files.bytes})`)
  t.equal(files.entries, 3)
  t.same((await readdir(dir)).sort(), [key(3), key(4), key(5)].sort(), 'the newest three are kept')
  t.equal(await files.get(key(0)), undefined, 'an evicted entry is a miss')
  t.equal(changes.at(-1), files.bytes, 'the size is reported as it changes')
  files.set(key('big'), entry(`{"n":"${'x'.repeat(2000)}"}`), 2010)
  await settle(files)
  t.equal(files.get(key('big')), undefined, 'over maxEntryBytes: not written')
  const restarted = await layer(dir, { maxDirBytes: 2000, maxEntryBytes: 1000 })
  t.equal(restarted.entries, 2, 'a smaller bound at start: the oldest found go')
  await settle(restarted)
  t.same((await readdir(dir)).sort(), [key(4), key(5)].sort())
})

test('expired, corrupt, foreign and oversized files are misses, and removed', async (t) => {
  const dir = await directory(t)
  const files = await layer(dir, { maxEntryBytes: 1024 })
  files.set(key('old'), entry('{"a":1}', 30), 7)
  await settle(files)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(await files.get(key('old')), undefined, 'expired')
  await writeFile(join(dir, key('corrupt')), 'mcp-gateway-cache 1 ' + key('corrupt') + '\nnot a header\n{}')
  await writeFile(join(dir, key('moved')), `mcp-gateway-cache 1 ${key('elsewhere')}\n9999999999999 1\n{}`)
  await writeFile(join(dir, key('huge')), `mcp-gateway-cache 1 ${key('huge')}\n9999999999999 1\n{"x":"${'y'.repeat(4096)}"}`)
  await writeFile(join(dir, '.tmp-leftover'), 'half')
  await writeFile(join(dir, 'notes.txt'), 'not ours')
  const restarted = await layer(dir, { maxEntryBytes: 1024 })
  t.same((await readdir(dir)).sort(), [key('corrupt'), key('huge'), key('moved'), 'notes.txt'].sort(), 'a temporary file is removed at start; the expired one is gone')
  t.equal(await restarted.get(key('corrupt')), undefined, 'a bad header')
  t.equal(await restarted.get(key('moved')), undefined, 'a file that names another key')
  t.equal(await restarted.get(key('huge')), undefined, 'bigger than an entry can be')
  await settle(restarted)
  t.same(await readdir(dir), ['notes.txt'], 'each removed; what is not the cache\'s is left alone')
  t.equal(restarted.entries, 0)
})

test('a directory that cannot be used: misses, logged once', async (t) => {
  const dir = await directory(t)
  await writeFile(join(dir, 'file'), 'a file, not a directory')
  const warnings: string[] = []
  const log: Logger = { ...silentLogger, warn: (_obj, msg) => { warnings.push(String(msg)) }, child: () => log }
  const files = await layer(join(dir, 'file', 'cache'), { log })
  files.set(key(1), entry('{}'), 2)
  await settle(files)
  t.equal(files.get(key(1)), undefined)
  t.ok(files.failing)
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0], /its directory cannot be used/)
})
