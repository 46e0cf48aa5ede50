import { mkdir, open, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../logger.js'
import { decodeEntry, encodeEntry, type StoredEntry } from './entry.js'

/**
 * The third layer: results in a directory (`cache.dir`), so one gateway keeps its cache across restarts. Each entry
 * is a file named by its key (a base64url SHA-256, nothing a caller chose), holding a line naming the key, then the
 * entry (entry.ts: its expiry inside); it is written to a temporary file and renamed, so a crash never leaves half an
 * entry under a key. The files are indexed in memory (key → size, oldest first), at start by a bounded scan of
 * the directory, so a lookup of what is not on disk costs no I/O at all, and the directory stays within
 * `cache.maxDirBytes` by removing the oldest files. Expired, corrupt or unreadable files are misses, and removed.
 * Disk errors never fail a call: they are misses (logged once at warn, and at info when the disk works again).
 */

const KEY = /^[A-Za-z0-9_-]{43}$/
const TEMP_PREFIX = '.tmp-'
const FIRST_LINE = 'mcp-gateway-cache 1 '
/** Files indexed at start at most (a directory with more is read partly; the rest are removed as strays). */
const MAX_SCAN = 100_000
/** Files stat'ed at once during the scan. */
const SCAN_BATCH = 64
/** Writes under way at most: past it, stores are skipped (nothing queues without bound). */
const MAX_WRITES = 16
/** What a file may hold beyond its result: the key line and the entry's header. */
const HEADER_BYTES = 128

export interface FileLayerOptions {
  dir: string
  maxDirBytes: number
  maxEntryBytes: number
  log: Logger
  /** What the files add up to, after each change (metrics). */
  changed?: (bytes: number) => void
}

export class FileLayer {
  readonly #dir: string
  readonly #maxDirBytes: number
  readonly #maxEntryBytes: number
  readonly #log: Logger
  readonly #changed: ((bytes: number) => void) | undefined
  /** What is on disk: key → file size, oldest first (Map order). */
  #index = new Map<string, number>()
  #bytes = 0
  readonly #writing = new Set<string>()
  /** Writes and removals under way. */
  readonly #io = new Set<Promise<void>>()
  #scanned = false
  #failing = false
  #serial = 0

  constructor (options: FileLayerOptions) {
    this.#dir = options.dir
    this.#maxDirBytes = options.maxDirBytes
    this.#maxEntryBytes = options.maxEntryBytes
    this.#log = options.log
    this.#changed = options.changed
  }

  /** Creates the directory and indexes what it holds; lookups miss until this is done, stores already work. */
  async start (): Promise<void> {
    try {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 })
      const found: Array<{ key: string, size: number, mtime: number }> = []
      const names = await readdir(this.#dir)
      for (let i = 0; i < names.length; i += SCAN_BATCH) {
        await Promise.all(names.slice(i, i + SCAN_BATCH).map(async (name) => {
          // Left by a write that never finished, or more than the scan takes: removed, so the bound holds.
          if (name.startsWith(TEMP_PREFIX) || (KEY.test(name) && found.length >= MAX_SCAN)) return this.#remove(name)
          if (!KEY.test(name)) return
          const info = await stat(join(this.#dir, name)).catch(() => undefined)
          if (info?.isFile() === true) found.push({ key: name, size: info.size, mtime: info.mtimeMs })
        }))
      }
      found.sort((a, b) => a.mtime - b.mtime)
      // Written since start: newer than anything found, so they stay last in line.
      const index = new Map<string, number>()
      let bytes = 0
      for (const { key, size } of found) {
        if (this.#index.has(key)) continue
        index.set(key, size)
        bytes += size
      }
      for (const [key, size] of this.#index) index.set(key, size)
      this.#index = index
      this.#bytes += bytes
      this.#scanned = true
      this.#evict()
      this.#worked()
    } catch (err) {
      this.#scanned = true
      this.#failed(err as Error)
    }
  }

  /** The entry under `key`: undefined at once when none is on disk. */
  get (key: string): Promise<StoredEntry | undefined> | undefined {
    if (!this.#scanned || !this.#index.has(key)) return undefined
    return this.#read(key)
  }

  /** Writes `entry` (`bytes`: its result's UTF-8 size) unless it is over maxEntryBytes or the disk is busy. */
  set (key: string, entry: StoredEntry, bytes: number): void {
    if (bytes > this.#maxEntryBytes || this.#writing.has(key) || this.#writing.size >= MAX_WRITES) return
    this.#writing.add(key)
    this.#track(this.#write(key, entry).finally(() => this.#writing.delete(key)))
  }

  /** The directory failed, and has not worked since: its misses are its errors. */
  get failing (): boolean {
    return this.#failing
  }

  get entries (): number {
    return this.#index.size
  }

  get bytes (): number {
    return this.#bytes
  }

  /** Waits for the writes and removals under way (a restart finds the disk as the index says). */
  async close (): Promise<void> {
    while (this.#io.size > 0) await Promise.all([...this.#io])
  }

  #track (io: Promise<void>): void {
    const tracked = io.finally(() => this.#io.delete(tracked))
    this.#io.add(tracked)
  }

  async #read (key: string): Promise<StoredEntry | undefined> {
    let raw: string
    try {
      const file = await open(join(this.#dir, key), 'r')
      try {
        const { size } = await file.stat()
        if (size > this.#maxEntryBytes + HEADER_BYTES) return this.#drop(key)
        raw = await file.readFile('utf8')
      } finally {
        await file.close()
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.#forget(key)
      this.#failed(err as Error)
      return undefined
    }
    this.#worked()
    const firstLine = raw.indexOf('\n')
    const entry = firstLine !== -1 && raw.slice(0, firstLine) === FIRST_LINE + key ? decodeEntry(raw, firstLine + 1) : undefined
    if (entry === undefined || entry.expiresAt <= Date.now()) return this.#drop(key)
    return entry
  }

  async #write (key: string, entry: StoredEntry): Promise<void> {
    const data = Buffer.from(`${FIRST_LINE}${key}\n${encodeEntry(entry)}`)
    const temp = join(this.#dir, `${TEMP_PREFIX}${key}-${process.pid}-${++this.#serial}`)
    try {
      await writeFile(temp, data, { mode: 0o600 })
      await rename(temp, join(this.#dir, key))
    } catch (err) {
      await unlink(temp).catch(() => {})
      this.#failed(err as Error)
      return
    }
    this.#worked()
    this.#forget(key)
    this.#index.set(key, data.length)
    this.#bytes += data.length
    this.#evict()
  }

  /** The oldest files go until the rest fit in maxDirBytes. */
  #evict (): void {
    for (const [key, size] of this.#index) {
      if (this.#bytes <= this.#maxDirBytes) break
      this.#index.delete(key)
      this.#bytes -= size
      this.#track(this.#remove(key))
    }
    this.#changed?.(this.#bytes)
  }

  /** Takes `key` out of the index and off the disk; a miss. */
  #drop (key: string): undefined {
    this.#forget(key)
    this.#track(this.#remove(key))
    return undefined
  }

  #forget (key: string): undefined {
    const size = this.#index.get(key)
    if (size !== undefined) {
      this.#index.delete(key)
      this.#bytes -= size
    }
    return undefined
  }

  async #remove (name: string): Promise<void> {
    await unlink(join(this.#dir, name)).catch(() => {})
  }

  #failed (err: Error): void {
    if (this.#failing) return
    this.#failing = true
    this.#log.warn({ dir: this.#dir, reason: err.message }, 'result cache: its directory cannot be used; its layer misses until it can')
  }

  #worked (): void {
    if (!this.#failing) return
    this.#failing = false
    this.#log.info({ dir: this.#dir }, 'result cache: its directory works again')
  }
}
