import { RawResult } from '../raw-result.js'

/**
 * A result as the Redis and file layers keep it: `<expiresAt> <storedAt>\n<result JSON>`, both on the layer's clock
 * (Redis's in µs, the file layer's in ms since the epoch). `storedAt` is when the lookup that missed ran, before the
 * upstream was asked: a resource entry in Redis is stale when an invalidation came later. What comes back from Redis
 * or a disk is untrusted: anything that is not this header and one JSON object is a miss, never an answer.
 */

export interface StoredEntry {
  readonly text: string
  readonly expiresAt: number
  readonly storedAt: number
}

const HEADER = /^(\d{1,16}) (\d{1,16})\n/

export function encodeEntry (entry: StoredEntry): string {
  return `${entry.expiresAt} ${entry.storedAt}\n${entry.text}`
}

/** The entry `raw` holds, starting at `from`; undefined when it is not one. */
export function decodeEntry (raw: string, from = 0): StoredEntry | undefined {
  const header = HEADER.exec(from === 0 ? raw.slice(0, 40) : raw.slice(from, from + 40))
  if (header === null) return undefined
  return { text: raw.slice(from + header[0].length), expiresAt: Number(header[1]), storedAt: Number(header[2]) }
}

/**
 * The entry's result, ready to answer with, when its text is one JSON object (parsed once here, to the gateway's
 * depth limit; the parse is kept for callers that read the value). Undefined for anything else.
 */
export function resultOf (text: string): RawResult | undefined {
  if (text.charCodeAt(0) !== 123) return undefined
  const result = RawResult.of(text)
  try {
    const value = result.value
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? result : undefined
  } catch {
    return undefined
  }
}
