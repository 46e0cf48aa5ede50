/**
 * Server-Sent Events: an incremental parser for the streams upstreams answer with, and the encoder for the
 * streams the gateway writes. Follows the WHATWG event-stream rules (CR, LF or CRLF line ends, comments, multi-line
 * data), which is what the MCP Streamable HTTP and legacy SSE transports use.
 */

export interface SseEvent {
  event: string
  data: string
  id: string | undefined
}

export class SseParser {
  #buffer = ''
  #afterCr = false
  #event = ''
  #data: string[] = []
  #id: string | undefined
  /** The last `id:` seen, including on events without data (the MCP priming event). */
  lastEventId: string | undefined
  /** The last `retry:` the server asked for, in milliseconds. */
  retry: number | undefined

  constructor (private readonly onEvent: (event: SseEvent) => void) {}

  push (chunk: string): void {
    let text = this.#buffer + chunk
    let start = 0
    // A CR ends a line at once; when the chunk before ended in CR, an LF opening this one is the rest of that CRLF.
    if (this.#afterCr && text.charCodeAt(0) === 10) start = 1
    this.#afterCr = false
    for (;;) {
      let end = -1
      for (let i = start; i < text.length; i++) {
        const c = text.charCodeAt(i)
        if (c === 10 || c === 13) {
          end = i
          break
        }
      }
      if (end === -1) break
      this.#line(text.slice(start, end))
      if (text.charCodeAt(end) === 13) {
        if (end + 1 === text.length) {
          this.#afterCr = true
          start = end + 1
          break
        }
        start = text.charCodeAt(end + 1) === 10 ? end + 2 : end + 1
      } else start = end + 1
    }
    text = text.slice(start)
    this.#buffer = text
  }

  /** Dispatches a final event that was not followed by a blank line. */
  end (): void {
    if (this.#buffer.length > 0) {
      this.#line(this.#buffer)
      this.#buffer = ''
    }
    this.#line('')
  }

  #line (line: string): void {
    if (line.length === 0) {
      if (this.#data.length > 0) {
        const data = this.#data.join('\n')
        const event = this.#event === '' ? 'message' : this.#event
        this.#data = []
        this.#event = ''
        const id = this.#id
        this.#id = undefined
        this.onEvent({ event, data, id })
      } else {
        this.#event = ''
        this.#id = undefined
      }
      return
    }
    if (line.charCodeAt(0) === 58) return // ':' comment (keep-alive)
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.charCodeAt(0) === 32) value = value.slice(1)
    switch (field) {
      case 'data':
        if (value.length > 0 || this.#data.length > 0) this.#data.push(value)
        break
      case 'event':
        this.#event = value
        break
      case 'id':
        if (!value.includes('\0')) {
          this.#id = value
          this.lastEventId = value
        }
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value)
        break
    }
  }
}

/** One `message` event carrying a JSON-RPC message; `data` must not contain raw newlines (JSON.stringify output). */
export function sseMessage (data: string, id?: string): string {
  return id === undefined
    ? 'event: message\ndata: ' + data + '\n\n'
    : 'event: message\nid: ' + id + '\ndata: ' + data + '\n\n'
}

export const SSE_KEEP_ALIVE = ': keep-alive\n\n'
