import { ERR_INVALID_CURSOR } from './errors.js'

/**
 * The gateway's own list cursors. A cursor names the last entry of the previous page (keyset pagination over the
 * catalog's sorted keys), so pages stay consistent while upstreams come and go: nothing is skipped or repeated
 * unless it was itself added or removed. Cursors are opaque to clients and tied to one list.
 */

/** Longest cursor accepted: one longer was not issued here (a key is at most a URI or a 64-character name). */
const CURSOR_LIMIT = 16 * 1024

export function encodeCursor (list: string, lastKey: string): string {
  return Buffer.from(list + '\n' + lastKey, 'utf8').toString('base64url')
}

/** The key to continue after; throws MCPGW_ERR_INVALID_CURSOR for anything this list did not issue. */
export function decodeCursor (list: string, cursor: unknown): string {
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > CURSOR_LIMIT || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw new ERR_INVALID_CURSOR(`${JSON.stringify(cursor)} is not a cursor this gateway issued`)
  }
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const newline = text.indexOf('\n')
  if (newline === -1 || text.slice(0, newline) !== list) {
    throw new ERR_INVALID_CURSOR(`${JSON.stringify(cursor)} was not issued for ${list}`)
  }
  return text.slice(newline + 1)
}
