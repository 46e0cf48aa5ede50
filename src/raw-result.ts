import type { JsonRpcId } from '../schemas/jsonrpc.js'
import { DEFAULT_MAX_JSON_DEPTH, jsonValueEnd, parseJson, skipSpace } from './json.js'

/**
 * An upstream's success answer kept as the text it arrived in. Forwarding a result only needs its id changed, so
 * the gateway swaps the id in the text instead of parsing and re-serializing the result: a 2 MB screenshot costs a
 * string concatenation, not two passes over 2 MB. The two layouts servers write are recognised (the TypeScript SDK
 * puts the result first, most others the id first), and the result's structure is checked in one pass (see
 * jsonValueEnd: one value, nested at most maxDepth, nothing after it); anything else is parsed as usual, where what
 * is wrong with it is found and reported.
 */

const RESULT_FIRST_HEAD = '{"result":'
/** `…,"jsonrpc":"2.0","id":17}` at the very end (the TypeScript SDK's key order). */
const RESULT_FIRST_TAIL = /,"jsonrpc":"2\.0","id":(\d{1,15})\}\s*$/
/** `{"jsonrpc":"2.0","id":17,"result":…` at the very start (Python, Go and hand-written servers). */
const ID_FIRST_HEAD = /^\{"jsonrpc":"2\.0","id":(\d{1,15}),"result":/
/** Past the tail's own length, where a tail can start. */
const TAIL_WINDOW = 48

export class RawResult {
  #value: unknown
  #parsed = false

  private constructor (
    /** The whole JSON-RPC response as the upstream wrote it (or, from `of`, the result alone). */
    readonly text: string,
    /** Where the result value starts and ends in `text`. */
    private readonly start: number,
    private readonly end: number,
    /** How deep the value may nest (checked when it is matched, and when it is parsed). */
    private readonly maxDepth: number
  ) {}

  /** A result the gateway wrote itself as JSON text (a page of the catalog), to be sent as it is. */
  static of (resultText: string): RawResult {
    return new RawResult(resultText, 0, resultText.length, DEFAULT_MAX_JSON_DEPTH)
  }

  /**
   * The result of a success answer and the (numeric) id it answers, when `text` has a layout this class knows;
   * undefined otherwise (errors, notifications, requests, other layouts).
   */
  static match (text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): { id: number, result: RawResult } | undefined {
    if (text.startsWith(RESULT_FIRST_HEAD)) {
      const from = Math.max(0, text.length - TAIL_WINDOW)
      const tail = RESULT_FIRST_TAIL.exec(text.slice(from))
      if (tail === null) return undefined
      // The value must end exactly where the tail starts: nothing else may travel with it (a second id, an error).
      const end = from + tail.index
      if (skipSpace(text, jsonValueEnd(text, RESULT_FIRST_HEAD.length, maxDepth)) !== end) return undefined
      return { id: Number(tail[1]), result: new RawResult(text, RESULT_FIRST_HEAD.length, end, maxDepth) }
    }
    const head = ID_FIRST_HEAD.exec(text)
    if (head === null) return undefined
    const valueEnd = jsonValueEnd(text, head[0].length, maxDepth)
    // One value, then the object's closing brace and nothing else.
    if (valueEnd === -1) return undefined
    const close = skipSpace(text, valueEnd)
    if (text.charCodeAt(close) !== 125 || skipSpace(text, close + 1) !== text.length) return undefined
    return { id: Number(head[1]), result: new RawResult(text, head[0].length, valueEnd, maxDepth) }
  }

  /** The result value as JSON text. */
  get resultText (): string {
    return this.text.slice(this.start, this.end)
  }

  /** The JSON-RPC response, answering `id` instead. */
  withId (id: JsonRpcId): string {
    return '{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"result":' + this.resultText + '}'
  }

  /**
   * The parsed result (parsed on first use, at most `maxDepth` deep: throws SyntaxError or JsonTooDeepError for a
   * result that is not JSON or nests deeper).
   */
  get value (): unknown {
    if (!this.#parsed) {
      this.#value = parseJson(this.resultText, this.maxDepth)
      this.#parsed = true
    }
    return this.#value
  }

  /**
   * Whether it is a tool result with `isError: true`. Inside a JSON string every quote is escaped, so the bare
   * text `"isError":true` can only be a key and its value; only then is the result parsed to be sure.
   */
  get isToolError (): boolean {
    if (!this.text.includes('"isError":true')) return false
    try {
      return (this.value as { isError?: unknown } | null)?.isError === true
    } catch {
      return false // a result that cannot be read is passed on as it came; whoever reads it finds out
    }
  }
}

/** A result as a plain value, whichever form it arrived in. */
export function resultValue (result: unknown): unknown {
  return result instanceof RawResult ? result.value : result
}
