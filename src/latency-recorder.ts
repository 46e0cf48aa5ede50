/**
 * Request counts and latency histograms recorded at the cost of a few additions per call, and exported through a
 * prom-client Registry at scrape time. prom-client's own Histogram hashes its label object on every observation,
 * which on a forwarding path costs more than the rest of the metrics work combined; here each label set is
 * resolved once to a `Series` the caller keeps.
 */

export class Series {
  /** Observations per bucket (not cumulative; made cumulative on export). */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor (readonly labels: Readonly<Record<string, string>>, private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length)
  }

  observe (value: number): void {
    this.sum += value
    this.count++
    const bounds = this.bounds
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        (this.counts[i] as number)++
        return
      }
    }
  }
}

export class LatencyRecorder {
  readonly #series = new Map<string, Series>()

  constructor (readonly labelNames: readonly string[], readonly buckets: readonly number[]) {}

  /** The series for these label values (in labelNames order), created on first use. */
  series (...values: string[]): Series {
    const key = values.join('\u0000')
    let series = this.#series.get(key)
    if (series === undefined) {
      const labels: Record<string, string> = {}
      this.labelNames.forEach((name, i) => { labels[name] = values[i] as string })
      series = new Series(labels, this.buckets)
      this.#series.set(key, series)
    }
    return series
  }

  /** Drops the series whose labels match (an upstream that was removed). */
  remove (match: (labels: Readonly<Record<string, string>>) => boolean): void {
    for (const [key, series] of this.#series) if (match(series.labels)) this.#series.delete(key)
  }

  all (): IterableIterator<Series> {
    return this.#series.values()
  }
}

interface MetricValue {
  labels: Record<string, string | number>
  value: number
  metricName?: string
}

/** The object prom-client's Registry accepts in registerMetric: a name, and `get()` of its current values. */
export interface ExportedMetric {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  get (): Promise<{ name: string, help: string, type: string, aggregator: 'sum', values: MetricValue[] }>
  reset (): void
}

/** A counter of the recorder's observations. */
export function counterOf (recorder: LatencyRecorder, name: string, help: string): ExportedMetric {
  return exported(name, help, 'counter', () => {
    const values: MetricValue[] = []
    for (const series of recorder.all()) values.push({ labels: { ...series.labels }, value: series.count })
    return values
  })
}

/** A counter of the sum of the recorder's observations (seconds spent, for a mean: divide by the count). */
export function sumOf (recorder: LatencyRecorder, name: string, help: string): ExportedMetric {
  return exported(name, help, 'counter', () => {
    const values: MetricValue[] = []
    for (const series of recorder.all()) values.push({ labels: { ...series.labels }, value: series.sum })
    return values
  })
}

/** A Prometheus histogram of the recorder's observations. */
export function histogramOf (recorder: LatencyRecorder, name: string, help: string): ExportedMetric {
  return exported(name, help, 'histogram', () => {
    const values: MetricValue[] = []
    for (const series of recorder.all()) {
      let cumulative = 0
      recorder.buckets.forEach((bound, i) => {
        cumulative += series.counts[i] as number
        values.push({ labels: { ...series.labels, le: bound }, value: cumulative, metricName: name + '_bucket' })
      })
      values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: name + '_bucket' })
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: name + '_sum' })
      values.push({ labels: { ...series.labels }, value: series.count, metricName: name + '_count' })
    }
    return values
  })
}

function exported (name: string, help: string, type: 'counter' | 'histogram', collect: () => MetricValue[]): ExportedMetric {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    async get () {
      return { name, help, type, aggregator: 'sum', values: collect() }
    },
    reset () {}
  }
}
