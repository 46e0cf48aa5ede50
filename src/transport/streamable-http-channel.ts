import type { JsonRpcId } from '../../schemas/jsonrpc.js'
import type { ClientChannel } from '../client-session.js'
import { sseMessage } from '../sse.js'
import { EventStore, type EventStoreLimits, type ReplayBudget } from './event-store.js'
import type { StreamSink } from './serve.js'

/**
 * A session's side of the Streamable HTTP transport: its GET stream, the SSE streams answering its POSTs, and the
 * bounded event store every event is kept in, so a client that loses a stream resumes it with `Last-Event-ID` — a
 * POST's answer stream included — and nothing it was sent is lost.
 */

const GET_STREAM = 'g'
/** The `retry:` a client is given: how long to wait before resuming a stream it lost (ms). */
const RECONNECT_AFTER = 1000

export interface ChannelOptions {
  /** Comment lines on idle streams, so proxies and clients do not time them out. */
  keepAliveInterval: number
  /** Bounds of the event store. */
  events: EventStoreLimits
  /** What all sessions' event stores may hold together. */
  budget?: ReplayBudget
}

/** One SSE response being written. */
class SseWriter {
  #open = true
  readonly #keepAlive: NodeJS.Timeout

  constructor (private readonly sink: StreamSink, keepAliveInterval: number, onClose: (delivered: boolean) => void) {
    this.#keepAlive = setInterval(() => sink.keepAlive(), keepAliveInterval)
    this.#keepAlive.unref()
    sink.onClose((delivered) => {
      this.#open = false
      clearInterval(this.#keepAlive)
      onClose(delivered)
    })
  }

  get open (): boolean {
    return this.#open
  }

  /** A message event; without data, a priming event that also tells the client how soon to reconnect. */
  write (id: string, data: string | undefined): void {
    if (!this.#open) return
    this.sink.write(data === undefined
      ? 'id: ' + id + '\nretry: ' + RECONNECT_AFTER + '\ndata: \n\n'
      : sseMessage(data, id))
  }

  end (): void {
    if (!this.#open) return
    this.#open = false
    clearInterval(this.#keepAlive)
    this.sink.end()
  }
}

/** The SSE stream answering one POSTed request; the connection writing it may change when the client resumes. */
export interface AnswerStream {
  readonly name: string
  readonly requestId: JsonRpcId
  writer: SseWriter | undefined
  done: boolean
}

/** A session's side of the Streamable HTTP transport: its GET stream, its answer streams and its event store. */
export class StreamableHttpChannel implements ClientChannel {
  readonly transport = 'streamable-http'
  readonly store: EventStore
  /** Set at initialize: whether streams start with a priming event. */
  priming = false
  #get: SseWriter | undefined
  /** Claimed by a GET being set up, so a second one racing it is refused. */
  #getClaimed = false
  /** The last GET-stream event written to a live connection; later ones wait for the next GET. */
  #getDelivered = 0
  /** Answer streams of requests still running, by the client's request id and by stream name. */
  readonly #answers = new Map<JsonRpcId, AnswerStream>()
  readonly #answersByName = new Map<string, AnswerStream>()
  #nextStream = 0

  constructor (private readonly options: ChannelOptions) {
    this.store = new EventStore(options.events, options.budget)
  }

  get open (): boolean {
    return this.#get?.open === true
  }

  send (message: string, relatedTo?: JsonRpcId): void {
    const answer = relatedTo === undefined ? undefined : this.#answers.get(relatedTo)
    if (answer !== undefined && !answer.done) {
      this.#emit(answer, message)
      return
    }
    const id = this.store.add(GET_STREAM, message)
    if (this.#get?.open === true) {
      this.#get.write(id, message)
      this.#getDelivered = seqOf(id)
    }
  }

  /** The session is over (or the gateway drains): streams end, and nothing is kept to resume them. */
  close (): void {
    this.#get?.end()
    this.#get = undefined
    for (const answer of this.#answers.values()) answer.writer?.end()
    this.store.clear()
  }

  /** Registers the answer stream of a request before the request runs, so what it causes is routed to it. */
  openAnswer (requestId: JsonRpcId): AnswerStream {
    const answer: AnswerStream = { name: 'p' + (++this.#nextStream), requestId, writer: undefined, done: false }
    this.#answers.set(requestId, answer)
    this.#answersByName.set(answer.name, answer)
    return answer
  }

  /** Writes an answer stream to a connection (its first, or one resuming it). */
  attachAnswer (answer: AnswerStream, sink: StreamSink): void {
    answer.writer?.end()
    answer.writer = this.#answerWriter(answer, sink)
    if (this.priming) answer.writer.write(this.store.add(answer.name, undefined), undefined)
  }

  /**
   * The request's response (none when the client withdrew the request): stored and written, then the stream ends. Once the connection has taken all of it, its
   * events are dropped (a large result is not kept for nothing); a client cut off before the end can still resume.
   */
  finishAnswer (answer: AnswerStream, response: string | undefined): void {
    // No response when the client withdrew the request: the stream just ends.
    if (response !== undefined) this.#emit(answer, response)
    answer.done = true
    if (this.#answers.get(answer.requestId) === answer) this.#answers.delete(answer.requestId)
    this.#answersByName.delete(answer.name)
    if (answer.writer === undefined) return
    answer.writer.end()
  }

  /** Claims the GET stream; false when one is open (or being opened) already. */
  claimGet (): boolean {
    if (this.#getClaimed || this.#get?.open === true) return false
    this.#getClaimed = true
    return true
  }

  /** Starts the GET stream on a connection: the GET-stream events no connection received yet come first. */
  attachGet (sink: StreamSink, resumeAfter?: number): void {
    this.#get?.end()
    const writer: SseWriter = new SseWriter(sink, this.options.keepAliveInterval, () => {
      if (this.#get === writer) this.#get = undefined
    })
    this.#get = writer
    this.#getClaimed = false
    if (this.priming) writer.write(this.store.add(GET_STREAM, undefined), undefined)
    for (const event of this.store.after(GET_STREAM, resumeAfter ?? this.#getDelivered)) {
      if (event.data === undefined) continue
      writer.write(GET_STREAM + '.' + event.seq, event.data)
      this.#getDelivered = Math.max(this.#getDelivered, event.seq)
    }
  }

  /** Resumes an answer stream after event `seq`: what it missed, then (if the request is still running) the rest. */
  resumeAnswer (name: string, seq: number, sink: StreamSink): boolean {
    const answer = this.#answersByName.get(name)
    const missed = this.store.after(name, seq)
    if (answer === undefined && missed.length === 0) return false
    if (answer !== undefined) {
      answer.writer?.end()
      const writer = this.#answerWriter(answer, sink)
      for (const event of missed) if (event.data !== undefined) writer.write(name + '.' + event.seq, event.data)
      answer.writer = writer
      return true
    }
    const writer = new SseWriter(sink, this.options.keepAliveInterval, (delivered) => { if (delivered) this.store.drop(name) })
    for (const event of missed) if (event.data !== undefined) writer.write(name + '.' + event.seq, event.data)
    writer.end()
    return true
  }

  /** Whether this session ever had an answer stream of this name. */
  issued (name: string): boolean {
    const number = /^p(\d{1,15})$/.exec(name)?.[1]
    return number !== undefined && Number(number) >= 1 && Number(number) <= this.#nextStream
  }

  /** Whether an answer stream can be resumed after `seq`: it is running, or some of its events are still kept. */
  resumable (name: string, seq: number): boolean {
    return this.#answersByName.has(name) || this.store.after(name, seq).length > 0
  }

  #answerWriter (answer: AnswerStream, sink: StreamSink): SseWriter {
    const writer: SseWriter = new SseWriter(sink, this.options.keepAliveInterval, (delivered) => {
      if (answer.writer === writer) answer.writer = undefined
      if (delivered && answer.done) this.store.drop(answer.name)
    })
    return writer
  }

  isAnswerStream (name: string): boolean {
    return name !== GET_STREAM
  }

  #emit (answer: AnswerStream, message: string): void {
    const id = this.store.add(answer.name, message)
    answer.writer?.write(id, message)
  }
}

function seqOf (id: string): number {
  return Number(id.slice(id.lastIndexOf('.') + 1))
}
