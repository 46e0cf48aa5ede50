import { createParser, type EventSourceParser } from 'eventsource-parser'
import { ERR_UPSTREAM_PROTOCOL } from './errors.js'

/**
 * Server-Sent Events: the parser for the streams upstreams answer with, and the encoder for the streams the gateway
 * writes. The WHATWG event-stream rules (CR, LF or CRLF line ends, comments, multi-line data) are what the MCP
 * Streamable HTTP and legacy SSE transports use.
 */

export interface SseEvent {
  event: string
  data: string
  id: string | undefined
}

export interface SseParserOptions {
  /** Longest event accepted (characters); a longer one fails the stream with MCPGW_ERR_UPSTREAM_PROTOCOL. */
  maxEventLength?: number
  /** Names the upstream in that error. */
  upstream?: string
}

/**
 * An incremental parser (eventsource-parser: it keeps the unfinished line and scans each chunk once, where
 * rescanning the buffer made one 16 MB event take half a minute), keeping what a resumption needs: the last event
 * id seen — a priming event (an id with empty data) sets it without being dispatched — and the retry hint.
 */
export class SseParser {
  /** The last `id:` seen, including on events without data (the MCP priming event). */
  lastEventId: string | undefined
  /** The last `retry:` the server asked for, in milliseconds. */
  retry: number | undefined
  readonly #parser: EventSourceParser

  constructor (onEvent: (event: SseEvent) => void, options: SseParserOptions = {}) {
    const limit = options.maxEventLength
    this.#parser = createParser({
      onEvent: (event) => {
        if (event.id !== undefined) this.lastEventId = event.id
        if (event.data === '') return
        onEvent({ event: event.event ?? 'message', data: event.data, id: event.id })
      },
      onRetry: (ms) => { this.retry = ms },
      onError: (err) => {
        // Unknown fields and unreadable retry values are ignored, as the standard says; an endless event is not.
        if (err.type === 'max-buffer-size-exceeded') {
          throw new ERR_UPSTREAM_PROTOCOL(options.upstream ?? 'unknown', `sent an SSE event longer than ${limit as number} characters (limits.maxUpstreamMessage)`)
        }
      },
      ...(limit !== undefined ? { maxBufferSize: limit } : {})
    })
  }

  push (chunk: string): void {
    this.#parser.feed(chunk)
  }

  /** The stream ended: an event not followed by a blank line is dispatched all the same. */
  end (): void {
    this.#parser.feed('\n\n')
    this.#parser.reset()
  }
}

/**
 * One `message` event carrying a JSON-RPC message. A message with raw line breaks (an upstream's pretty-printed
 * JSON, passed on as it came) is written one `data:` line per line, which the client joins back with newlines.
 */
export function sseMessage (data: string, id?: string): string {
  const lines = LINE_BREAK.test(data) ? data.split(LINE_BREAKS).join('\ndata: ') : data
  return id === undefined
    ? 'event: message\ndata: ' + lines + '\n\n'
    : 'event: message\nid: ' + id + '\ndata: ' + lines + '\n\n'
}

const LINE_BREAK = /[\r\n]/
const LINE_BREAKS = /\r\n|\r|\n/

export const SSE_KEEP_ALIVE = ': keep-alive\n\n'
