/**
 * Newline-delimited messages out of a stream of text chunks, in time linear in the text: each chunk is scanned
 * once, and an unfinished line is kept as its pieces (joined only when its newline arrives), where rescanning the
 * buffer made one 16 MB line cost over a second. A line longer than `maxLength` is skipped whole (its start is
 * reported to `onTooLong`), so one endless line cannot take the process's memory.
 */
export class LineSplitter {
  #pieces: string[] = []
  #length = 0
  #skipping = false

  constructor (
    private readonly onLine: (line: string) => void,
    private readonly maxLength: number,
    private readonly onTooLong: (start: string) => void
  ) {}

  push (chunk: string): void {
    let from = 0
    for (;;) {
      const newline = chunk.indexOf('\n', from)
      if (newline === -1) {
        this.#keep(chunk.slice(from))
        return
      }
      this.#keep(chunk.slice(from, newline))
      if (!this.#skipping) {
        const line = this.#pieces.length === 1 ? this.#pieces[0] as string : this.#pieces.join('')
        if (line.length > 0) this.onLine(line)
      }
      this.#pieces = []
      this.#length = 0
      this.#skipping = false
      from = newline + 1
    }
  }

  #keep (piece: string): void {
    if (this.#skipping || piece.length === 0) return
    if (this.#length + piece.length > this.maxLength) {
      this.onTooLong((this.#pieces[0] ?? piece).slice(0, 200))
      this.#pieces = []
      this.#length = 0
      this.#skipping = true
      return
    }
    this.#pieces.push(piece)
    this.#length += piece.length
  }
}
