/**
 * JSON from clients and upstreams, read with a nesting limit. JSON.parse accepts any depth, but JSON.stringify and
 * every recursive walk overflow their stack at a few thousand levels, so a message nested deeper than the limit is
 * refused where it is parsed, before anything else touches it. The depth is counted on the text in one pass (string
 * contents are skipped with indexOf), which costs far less than the parse that follows.
 */

/** The default limit: far beyond any real MCP message, far below what overflows a stack. */
export const DEFAULT_MAX_JSON_DEPTH = 128

/** Longest message taken from an upstream by default (characters): room for screenshots, not for a runaway stream. */
export const DEFAULT_MAX_UPSTREAM_MESSAGE = 32 * 1024 * 1024

/** Whether `text` opens more than `limit` arrays or objects inside one another. */
export function deeperThan (text: string, limit: number): boolean {
  let depth = 0
  const length = text.length
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) { // '"': jump to the quote that ends the string (one not escaped by an odd run of backslashes)
      let end = i
      for (;;) {
        end = text.indexOf('"', end + 1)
        if (end === -1) return false // unterminated: JSON.parse reports it
        let slashes = 0
        while (text.charCodeAt(end - 1 - slashes) === 92) slashes++
        if (slashes % 2 === 0) break
      }
      i = end
    } else if (c === 123 || c === 91) { // '{' '['
      if (++depth > limit) return true
    } else if (c === 125 || c === 93) { // '}' ']'
      depth--
    }
  }
  return false
}

/** Thrown for JSON nested deeper than allowed; `value` is the parsed text (for the id of the message it was). */
export class JsonTooDeepError extends Error {
  constructor (readonly limit: number, readonly value: unknown) {
    super(`JSON nested deeper than ${limit} levels`)
  }
}

/**
 * Parses JSON text nested at most `limit` deep. Throws SyntaxError for text that is not JSON and JsonTooDeepError
 * for text nested deeper (JSON.parse itself never overflows, so the refused value is still read, for its id).
 */
export function parseJson (text: string, limit: number): unknown {
  const value: unknown = JSON.parse(text)
  if (deeperThan(text, limit)) throw new JsonTooDeepError(limit, value)
  return value
}
