/**
 * The events one session's SSE streams carried, kept so a client that lost a stream can resume it with
 * `Last-Event-ID` and receive what it missed. Bounded per session — the oldest events go first once the session
 * holds more than `maxEvents` or `maxBytes` (a single larger event is kept on its own until the next one arrives) —
 * and across sessions by a ReplayBudget: past it, the oldest events of any session go, so clients that abandon large
 * answers in thousands of sessions cannot take the process's memory. Event ids are `<stream>.<sequence>`: unique in
 * the session, and they name the stream a resumption must continue.
 */

export interface StoredEvent {
  stream: string
  seq: number
  /** The message; undefined for a priming event (an id with no data). */
  data: string | undefined
  /** Set once the event left its store. */
  gone: boolean
}

export interface EventStoreLimits {
  maxEvents: number
  maxBytes: number
}

/** The bytes every session's events may take together; the oldest events anywhere make room for new ones. */
export class ReplayBudget {
  /** Every event kept, oldest first (and events already gone, until compacted away). */
  #queue: Array<{ store: EventStore, event: StoredEvent }> = []
  #head = 0
  #live = 0
  bytes = 0

  constructor (readonly maxBytes: number) {}

  /** An event was kept: count it, and make room if the budget is exceeded. */
  added (store: EventStore, event: StoredEvent): void {
    this.#queue.push({ store, event })
    this.#live++
    this.bytes += sizeOf(event)
    // The new event itself stays (as a session keeps one larger event alone), whatever it weighs.
    while (this.bytes > this.maxBytes && this.#head < this.#queue.length - 1) {
      const oldest = this.#queue[this.#head++] as { store: EventStore, event: StoredEvent }
      if (!oldest.event.gone) oldest.store.evictOldest(oldest.event)
    }
    this.#compact()
  }

  /** An event left its store (evicted, dropped, or made room here). */
  released (event: StoredEvent): void {
    this.#live--
    this.bytes -= sizeOf(event)
  }

  /** Drops the entries of events that are gone once they are most of the queue. */
  #compact (): void {
    if (this.#queue.length < 1024 || this.#queue.length - this.#head < 2 * this.#live) return
    this.#queue = this.#queue.slice(this.#head).filter(entry => !entry.event.gone)
    this.#head = 0
  }
}

export class EventStore {
  readonly #events: StoredEvent[] = []
  #head = 0
  #bytes = 0
  #seq = 0

  constructor (private readonly limits: EventStoreLimits, private readonly budget?: ReplayBudget) {}

  /** Stores an event and returns its id. */
  add (stream: string, data: string | undefined): string {
    const event: StoredEvent = { stream, seq: ++this.#seq, data, gone: false }
    this.#events.push(event)
    this.#bytes += sizeOf(event)
    while (this.#events.length - this.#head > 1 &&
      (this.#events.length - this.#head > this.limits.maxEvents || this.#bytes > this.limits.maxBytes)) {
      this.#release(this.#events[this.#head++] as StoredEvent)
    }
    this.budget?.added(this, event)
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
      if (event.stream === stream) this.#release(event)
      else this.#events[kept++] = event
    }
    this.#events.length = kept
  }

  /** The budget needs room: `event`, this store's oldest, goes. */
  evictOldest (event: StoredEvent): void {
    if (this.#events[this.#head] === event) this.#head++
    else {
      const at = this.#events.indexOf(event, this.#head)
      if (at === -1) return
      this.#events.splice(at, 1)
    }
    this.#release(event)
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

  /** Every event leaves: the session ended. */
  clear (): void {
    for (let i = this.#head; i < this.#events.length; i++) this.#release(this.#events[i] as StoredEvent)
    this.#events.length = 0
    this.#head = 0
  }

  #release (event: StoredEvent): void {
    if (event.gone) return
    event.gone = true
    this.#bytes -= sizeOf(event)
    this.budget?.released(event)
    // Its message goes now: the entry itself may linger in an array until that is compacted (see add, ReplayBudget).
    event.data = undefined
  }

  static parseId (id: string): { stream: string, seq: number } | undefined {
    const dot = id.lastIndexOf('.')
    if (dot <= 0 || !/^\d{1,15}$/.test(id.slice(dot + 1))) return undefined
    const seq = Number(id.slice(dot + 1))
    return { stream: id.slice(0, dot), seq }
  }
}

function sizeOf (event: StoredEvent): number {
  return event.data?.length ?? 0
}
