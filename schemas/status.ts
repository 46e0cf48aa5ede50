import Type from 'typebox'

/** Replies of the operational endpoints: /health (for load balancers), /status (for people), /info. */

export const HealthReply = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')]),
  servers: Type.Object({
    total: Type.Integer(),
    up: Type.Integer(),
    down: Type.Integer(),
    disabled: Type.Integer()
  }),
  tools: Type.Integer()
})

/** /health/live and /health/ready. */
export const ProbeReply = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('draining')])
})

export const UpstreamStatus = Type.Object({
  id: Type.String(),
  service: Type.String(),
  transport: Type.String(),
  target: Type.String({ description: 'URL without its query, or the command of a stdio server and how many arguments it has' }),
  state: Type.String(),
  reason: Type.Optional(Type.String()),
  since: Type.String({ format: 'date-time' }),
  enabled: Type.Boolean(),
  weight: Type.Integer(),
  tags: Type.Array(Type.String()),
  pid: Type.Optional(Type.Integer()),
  server: Type.Optional(Type.Object({ name: Type.String(), version: Type.String() }, { additionalProperties: true })),
  protocolVersion: Type.Optional(Type.String()),
  tools: Type.Integer(),
  resources: Type.Integer(),
  resourceTemplates: Type.Integer(),
  prompts: Type.Integer()
})

export const StatusReply = Type.Object({
  name: Type.String(),
  version: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  uptime: Type.Number({ description: 'seconds' }),
  sessions: Type.Integer(),
  catalog: Type.Object({
    tools: Type.Integer(),
    resources: Type.Integer(),
    resourceTemplates: Type.Integer(),
    prompts: Type.Integer()
  }),
  collisions: Type.Unknown(),
  rateLimit: Type.Optional(Type.Object({
    counting: Type.Union([Type.Literal('redis'), Type.Literal('local')], {
      description: '"local": each gateway process counts alone (no rateLimit.redis, or Redis is unavailable)'
    }),
    redis: Type.Optional(Type.Object({
      state: Type.Union([Type.Literal('connecting'), Type.Literal('ready'), Type.Literal('unavailable')]),
      since: Type.String({ format: 'date-time' }),
      reason: Type.Optional(Type.String())
    })),
    limits: Type.Array(Type.String())
  })),
  cache: Type.Optional(Type.Object({
    layers: Type.Array(Type.Union([Type.Literal('memory'), Type.Literal('redis'), Type.Literal('file')])),
    redis: Type.Optional(Type.Object({
      state: Type.Union([Type.Literal('connecting'), Type.Literal('ready'), Type.Literal('unavailable')], {
        description: '"unavailable": lookups miss in Redis (and resource reads are not cached) until it answers again'
      }),
      since: Type.String({ format: 'date-time' }),
      reason: Type.Optional(Type.String()),
      pendingInvalidations: Type.Integer({ description: 'Resource invalidations heard while Redis was away, sent when it is back' })
    }))
  }, { description: 'The result cache\'s layers (when configured)' })),
  servers: Type.Array(UpstreamStatus)
})

export const InfoReply = Type.Object({
  name: Type.String(),
  version: Type.String(),
  protocolVersions: Type.Array(Type.String()),
  transports: Type.Array(Type.String()),
  prefixMode: Type.String(),
  separator: Type.String(),
  endpoints: Type.Record(Type.String(), Type.String())
})

/** GET /upstream/health: per upstream, what decides whether it takes calls. */
export const UpstreamHealthReply = Type.Object({
  upstreams: Type.Array(Type.Object({
    id: Type.String(),
    service: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('inactive'), Type.Literal('error')], {
      description: 'active: takes calls; inactive: disabled or drained (weight 0); error: down, reconnecting, its circuit open, or ejected'
    }),
    state: Type.String(),
    reason: Type.Optional(Type.String()),
    since: Type.String({ format: 'date-time' }),
    lastCheck: Type.Optional(Type.Object({
      at: Type.String({ format: 'date-time', description: 'When it ended' }),
      ok: Type.Boolean(),
      ms: Type.Integer({ description: 'How long it took' }),
      error: Type.Optional(Type.String({ description: 'Why it failed' }))
    }, { description: 'Its last health check (an MCP ping, or the GET of healthCheck.path)' })),
    failedChecks: Type.Integer({ description: 'Health checks failed in a row (healthCheck.unhealthyThreshold takes it down)' }),
    latencyMs: Type.Number({ description: 'Peak EWMA of call latency' }),
    latency: Type.Object({
      p50Ms: Type.Number(),
      p95Ms: Type.Number(),
      p99Ms: Type.Number(),
      samples: Type.Integer({ description: 'Calls the percentiles are computed from' }),
      windowMs: Type.Integer({ description: 'Over the last this many ms' })
    }, { description: 'Percentiles of call latency over a recent window (0 without calls)' }),
    errorRate: Type.Number({ description: 'Share of recent calls that failed, 0..1' }),
    calls: Type.Integer({ description: 'Calls measured since start' }),
    inFlight: Type.Integer(),
    queue: Type.Object({ running: Type.Integer(), queued: Type.Integer() }),
    circuit: Type.Object({
      state: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')]),
      failures: Type.Integer(),
      opens: Type.Integer(),
      retryAfterMs: Type.Optional(Type.Integer())
    }),
    ejection: Type.Object({
      ejected: Type.Boolean({ description: 'Out of rotation by outlier detection' }),
      until: Type.Optional(Type.String({ format: 'date-time' })),
      reason: Type.Optional(Type.String()),
      ejections: Type.Integer({ description: 'Times ejected recently (each ejection lasts longer)' })
    })
  }))
})
