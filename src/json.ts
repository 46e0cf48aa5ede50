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
  const length = text.length
  if (length <= limit) return false // too short to open more than `limit` brackets
  let depth = 0
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

/**
 * Where the JSON value starting at `start` (after any whitespace) ends in `text`, checking its structure on the way
 * without building it: brackets that match, strings that end, and at most `limit` levels of nesting. -1 when the
 * text there is not one well-formed value (or nests deeper). Numbers and literals are only delimited, not checked;
 * that is for whoever parses the value — what matters here is that nothing can follow it unseen.
 */
export function jsonValueEnd (text: string, start: number, limit: number): number {
  const length = text.length
  let i = skipSpace(text, start)
  if (i >= length) return -1
  const closers: number[] = []
  for (;;) {
    const c = text.charCodeAt(i)
    if (c === 34) { // '"'
      i = stringEnd(text, i)
      if (i === -1) return -1
    } else if (c === 123 || c === 91) { // '{' '['
      if (closers.length === limit) return -1
      closers.push(c === 123 ? 125 : 93)
      i++
    } else if (c === 125 || c === 93) { // '}' ']'
      if (closers.pop() !== c) return -1
      i++
    } else if (closers.length === 0) {
      // A top-level number or literal: up to the first delimiter.
      const from = i
      while (i < length && !isDelimiter(text.charCodeAt(i))) i++
      if (i === from) return -1
    } else {
      i++
    }
    if (closers.length === 0) return i
    if (i >= length) return -1
  }
}

/** Past the quote that ends the string whose opening quote is at `open`; -1 when it never ends. */
function stringEnd (text: string, open: number): number {
  let end = open
  for (;;) {
    end = text.indexOf('"', end + 1)
    if (end === -1) return -1
    let slashes = 0
    while (text.charCodeAt(end - 1 - slashes) === 92) slashes++
    if (slashes % 2 === 0) return end + 1
  }
}

export function skipSpace (text: string, at: number): number {
  let i = at
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break
    i++
  }
  return i
}

function isDelimiter (c: number): boolean {
  return c === 44 || c === 125 || c === 93 || c === 32 || c === 10 || c === 13 || c === 9 || c === 58
}
