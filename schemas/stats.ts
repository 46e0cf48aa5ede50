import Type from 'typebox'

/** GET /stats: what the gateway's calls did recently, in total, per upstream and per tool. */

export const WindowFigures = Type.Object({
  calls: Type.Integer(),
  errors: Type.Integer({ description: 'Calls that did not succeed (tool errors, JSON-RPC errors, timeouts, failures); cancelled ones are not errors' }),
  errorRate: Type.Number({ description: 'errors / calls, 0..1' }),
  callsPerSec: Type.Number({ description: 'Calls per second over the window' }),
  p50Ms: Type.Number(),
  p95Ms: Type.Number(),
  p99Ms: Type.Number()
}, { description: 'Over the window: calls, errors and latency percentiles (within ~12%; 0 without calls)' })

const Windows = {
  minute: WindowFigures,
  quarter: WindowFigures
}

export const StatsQuery = Type.Object({
  tools: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'How many of the most called tools to list (default 20)' })),
  errors: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'How many of the latest errors to list (default 20)' }))
}, { additionalProperties: false })

const CacheLayerFigures = Type.Object({
  hits: Type.Integer(),
  misses: Type.Integer(),
  unavailable: Type.Integer({ description: 'Lookups the layer could not answer (Redis away or busy, a disk error): misses too' }),
  entries: Type.Optional(Type.Integer({ description: 'memory and file: what this process holds' })),
  bytes: Type.Optional(Type.Integer()),
  state: Type.Optional(Type.Union([Type.Literal('connecting'), Type.Literal('ready'), Type.Literal('unavailable')], { description: 'redis: its connection now' }))
})

export const StatsReply = Type.Object({
  at: Type.String({ format: 'date-time' }),
  uptimeSec: Type.Number(),
  totals: Type.Object({
    ...Windows,
    inFlight: Type.Integer({ description: 'Calls in flight to upstreams now' }),
    sessions: Type.Integer({ description: 'Client sessions open' }),
    cache: Type.Optional(Type.Object({
      hits: Type.Integer(),
      misses: Type.Integer(),
      hitRate: Type.Number({ description: 'hits / (hits + misses) since start, 0..1' }),
      entries: Type.Integer({ description: 'Of the memory layer' }),
      bytes: Type.Integer({ description: 'Of the memory layer' }),
      layers: Type.Optional(Type.Object({
        memory: CacheLayerFigures,
        redis: Type.Optional(CacheLayerFigures),
        file: Type.Optional(CacheLayerFigures)
      }, { description: 'Each layer\'s answers to lookups; a lookup that misses memory asks the next layer' }))
    }, { description: 'The result cache since start (when configured)' })),
    upstreams: Type.Object({
      total: Type.Integer(),
      active: Type.Integer(),
      inactive: Type.Integer(),
      error: Type.Integer()
    })
  }),
  connections: Type.Object({
    sessions: Type.Integer({ description: 'Client sessions open' }),
    byTransport: Type.Object({
      'streamable-http': Type.Integer(),
      sse: Type.Integer({ description: 'The legacy HTTP+SSE transport' }),
      websocket: Type.Integer()
    }),
    listening: Type.Integer({ description: 'Sessions with a stream or socket open now (they can be sent what they did not ask for)' }),
    initializing: Type.Integer({ description: 'Sessions whose client has not completed initialization' }),
    ownUpstreamSessions: Type.Integer({ description: 'Upstream sessions opened for single clients (their roots, log level, sampling…)' }),
    clients: Type.Array(Type.Object({ name: Type.String({ description: 'clientInfo.name, as the client declared it' }), sessions: Type.Integer() }), {
      description: 'The client applications with the most sessions (at most 10)'
    })
  }, { description: 'Who is connected' }),
  upstreams: Type.Array(Type.Object({
    id: Type.String(),
    service: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('inactive'), Type.Literal('error')]),
    state: Type.String(),
    reason: Type.Optional(Type.String()),
    inFlight: Type.Integer(),
    anomaly: Type.Object({
      latency: Type.Number({ description: 'How far its recent median latency is above its own baseline (a robust z-score; 0: not above, or not scored yet)' }),
      errors: Type.Number({ description: 'The same for its error rate' })
    }),
    ...Windows
  }), { description: 'Every upstream, in configuration order' }),
  tools: Type.Array(Type.Object({
    name: Type.String({ description: 'As clients see it' }),
    service: Type.String(),
    ...Windows
  }), { description: 'The tools called most over the last 15 minutes' }),
  recentErrors: Type.Array(Type.Object({
    at: Type.String({ format: 'date-time' }),
    upstream: Type.String(),
    service: Type.String(),
    tool: Type.Optional(Type.String()),
    method: Type.String(),
    outcome: Type.String(),
    message: Type.String()
  }), { description: 'The latest failed calls, newest first' }),
  alerts: Type.Array(Type.Object({
    rule: Type.String(),
    when: Type.String(),
    upstream: Type.String(),
    service: Type.String(),
    state: Type.Union([Type.Literal('pending'), Type.Literal('firing'), Type.Literal('resolved')]),
    since: Type.String({ format: 'date-time', description: 'When its condition started holding' }),
    firedAt: Type.Optional(Type.String({ format: 'date-time' })),
    resolvedAt: Type.Optional(Type.String({ format: 'date-time' })),
    value: Type.Number(),
    threshold: Type.Number(),
    message: Type.String()
  }), { description: 'Alerts pending or firing, then the latest resolved ones' })
}, { description: '"minute" is the last 60 s, "quarter" the last 15 minutes' })
