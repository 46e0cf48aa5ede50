/**
 * The events one session's SSE streams carried, kept so a client that lost a stream can resume it with
 * `Last-Event-ID` and receive what it missed. Bounded: the oldest events go first once the session holds more than
 * `maxEvents` or `maxBytes` (a single larger event is kept on its own until the next one arrives). Event ids are
 * `<stream>.<sequence>`: unique in the session, and they name the stream a resumption must continue.
 */

export interface StoredEvent {
  stream: string
  seq: number
  /** The message; undefined for a priming event (an id with no data). */
  data: string | undefined
}

export interface EventStoreLimits {
  maxEvents: number
  maxBytes: number
}

export class EventStore {
  readonly #events: StoredEvent[] = []
  #head = 0
  #bytes = 0
  #seq = 0

  constructor (private readonly limits: EventStoreLimits) {}

  /** Stores an event and returns its id. */
  add (stream: string, data: string | undefined): string {
    const event = { stream, seq: ++this.#seq, data }
    this.#events.push(event)
    this.#bytes += data?.length ?? 0
    while (this.#events.length - this.#head > 1 &&
      (this.#events.length - this.#head > this.limits.maxEvents || this.#bytes > this.limits.maxBytes)) {
      this.#bytes -= (this.#events[this.#head] as StoredEvent).data?.length ?? 0
      this.#head++
    }
    // Compact now and then rather than shifting the array on every eviction.
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events.splice(0, this.#head)
      this.#head = 0
    }
    return stream + '.' + event.seq
  }

  /** Forgets every event of `stream` (it was delivered in full). */
  drop (stream: string): void {
    let kept = this.#head
    for (let i = this.#head; i < this.#events.length; i++) {
      const event = this.#events[i] as StoredEvent
      if (event.stream === stream) this.#bytes -= event.data?.length ?? 0
      else this.#events[kept++] = event
    }
    this.#events.length = kept
  }

  /** Events of `stream` after sequence `after` that are still kept, oldest first. */
  after (stream: string, after: number): StoredEvent[] {
    const found: StoredEvent[] = []
    for (let i = this.#head; i < this.#events.length; i++) {
      const event = this.#events[i] as StoredEvent
      if (event.stream === stream && event.seq > after) found.push(event)
    }
    return found
  }

  static parseId (id: string): { stream: string, seq: number } | undefined {
    const dot = id.lastIndexOf('.')
    if (dot <= 0 || !/^\d{1,15}$/.test(id.slice(dot + 1))) return undefined
    const seq = Number(id.slice(dot + 1))
    return { stream: id.slice(0, dot), seq }
  }
}
