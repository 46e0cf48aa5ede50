import Type, { type Static } from 'typebox'

/**
 * The gateway's configuration file. Every object is closed (`additionalProperties: false`) so a misspelt key is an
 * error that names it, never a setting silently ignored. Defaults live in `src/config/normalize.ts`, not here, so
 * the same schema validates both files and runtime registrations.
 */

/** The longest delay a Node timer takes (about 24.8 days): a longer one would fire at once. */
const MAX_TIMER = 2_147_483_647
const Milliseconds = (description: string) => Type.Integer({ minimum: 1, maximum: MAX_TIMER, description })

/** How an upstream's health is checked; `upstreamDefaults.healthCheck` sets them for all, a server's own override. */
const healthCheckFields = {
  intervalMs: Type.Optional(Milliseconds('How often a connected upstream is checked (default 30000, ±10% jitter)')),
  timeoutMs: Type.Optional(Milliseconds('Deadline of one check (default 5000)')),
  unhealthyThreshold: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 100,
    description: 'Checks failed in a row that take a connected upstream out of rotation (default 2; a check made because a call failed decides at once)'
  })),
  healthyThreshold: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 100,
    description: 'Checks passed in a row before an upstream that was down takes calls again (default 1: reconnecting is the check)'
  })),
  retryIntervalMs: Type.Optional(Milliseconds('How soon a check is repeated while an upstream is in doubt: after a failed check, and while it proves healthy again (default 2000)'))
}

export const ServerId = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
  description: 'Unique id of the upstream: letters, digits, "_", "-", "." (it becomes the tool prefix)'
})

export const Transport = Type.Union([
  Type.Literal('streamable-http'), Type.Literal('sse'), Type.Literal('websocket'), Type.Literal('stdio')
], {
  description: 'How the gateway talks to the upstream: "sse" is the legacy HTTP+SSE transport (2024-11-05); ' +
    'inferred from url/command when omitted (ws:// and wss:// mean websocket)'
})

export const NameFilter = Type.Object({
  allow: Type.Optional(Type.Array(Type.String({ minLength: 1 }), {
    description: 'Only these upstream names are exposed ("*" matches any run of characters)'
  })),
  deny: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'These upstream names are hidden' })),
  rename: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }), {
    description: 'Upstream name → exact name exposed to clients (not prefixed)'
  })),
  descriptions: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Upstream name → description shown instead' }))
}, { additionalProperties: false })
export type NameFilter = Static<typeof NameFilter>

/** Fields every upstream entry may carry, in either list shape. */
export const BalancerConfig = Type.Object({
  strategy: Type.Optional(Type.Union([
    Type.Literal('peak-ewma'), Type.Literal('round-robin'), Type.Literal('least-connections'), Type.Literal('weighted'),
    Type.Literal('random'), Type.Literal('ip-hash'), Type.Literal('consistent-hash'), Type.Literal('health-based')
  ], { description: 'How a call picks among a service\'s replicas; default "peak-ewma" (two at random, the less loaded wins)' })),
  hashOn: Type.Optional(Type.Union([Type.Literal('address'), Type.Literal('principal'), Type.Literal('session')], {
    description: 'What consistent-hash keys on (default "address"; ip-hash always the address)'
  }))
}, { additionalProperties: false })

const upstreamFields = {
  transport: Type.Optional(Transport),
  url: Type.Optional(Type.String({
    pattern: '^(https?|wss?)://',
    description: 'Endpoint of an HTTP server (http:// or https://, e.g. http://127.0.0.1:3001/mcp; the SSE stream for "sse") ' +
      'or of a WebSocket server (ws:// or wss://)'
  })),
  command: Type.Optional(Type.String({ minLength: 1, description: 'Executable of a stdio server' })),
  args: Type.Optional(Type.Array(Type.String())),
  env: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Environment of the stdio process (added to a minimal safe set)' })),
  cwd: Type.Optional(Type.String({ minLength: 1 })),
  service: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 64,
    pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
    description: 'Upstreams sharing a service are replicas of one logical server (default: the id)'
  })),
  weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, description: 'Size of the HTTP connection pool' })),
  timeout: Type.Optional(Milliseconds('Deadline of one call to this upstream')),
  headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), Type.String(), {
    description: 'Sent on every HTTP request to this upstream, and on the upgrade request of a WebSocket (its credentials)',
    additionalProperties: false
  })),
  enabled: Type.Optional(Type.Boolean()),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  sessionMode: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('shared'), Type.Literal('per-client')], {
    description: 'Upstream sessions: "auto" (default) gives a client its own session only when it needs one (it declared ' +
      'sampling, elicitation or roots, set a log level or subscribed), "shared" makes every client share the gateway\'s ' +
      'session, "per-client" gives every client its own'
  })),
  stateless: Type.Optional(Type.Boolean({ description: 'Deprecated: true is sessionMode "shared"' })),
  forwardIdentity: Type.Optional(Type.Boolean({
    description: 'Send the caller\'s principal on each request (x-mcp-gateway-principal, -principal-kind, -roles headers); streamable-http only'
  })),
  maxSessions: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 100000,
    description: 'Most client sessions held open on this upstream; beyond it the least recently used idle one is closed'
  })),
  tools: Type.Optional(NameFilter),
  prompts: Type.Optional(NameFilter),
  balancer: Type.Optional(BalancerConfig),
  maxConcurrent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'Most calls in flight to this upstream; beyond it calls wait in its queue (0: no limit)' })),
  queue: Type.Optional(Type.Object({
    size: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'Calls that may wait for a slot (beyond: refused at once)' })),
    timeoutMs: Type.Optional(Milliseconds('How long a call waits for a slot before it is refused'))
  }, { additionalProperties: false })),
  cache: Type.Optional(Type.Object({
    ttlMs: Milliseconds('How long a result of its tools (and its resource reads, with resources) is served from the cache'),
    force: Type.Optional(Type.Boolean({ description: 'Cache tools not annotated readOnlyHint too (default false)' })),
    resources: Type.Optional(Type.Boolean({
      description: 'Cache its resources/read results too, until their ttlMs or the upstream\'s resources/updated or list_changed (default false)'
    }))
  }, { additionalProperties: false, description: 'Cache the results of this service\'s read-only tools (needs the top-level cache; replicas must agree)' })),
  healthCheck: Type.Optional(Type.Object({
    ...healthCheckFields,
    path: Type.Optional(Type.String({
      pattern: '^/[^\\s]*$',
      maxLength: 2048,
      description: 'Check with an HTTP GET of this path on the server\'s origin instead of an MCP ping: a 2xx answer is healthy (HTTP upstreams)'
    }))
  }, { additionalProperties: false, description: 'How this upstream\'s health is checked (over upstreamDefaults.healthCheck)' }))
}

export const ServerConfig = Type.Object({ id: ServerId, ...upstreamFields }, { additionalProperties: false })
export type ServerConfig = Static<typeof ServerConfig>

/** The map Claude Desktop, Cursor and VS Code use; `type` and `disabled` are their spellings. */
export const McpServerEntry = Type.Object({
  ...upstreamFields,
  type: Type.Optional(Type.Union([
    Type.Literal('stdio'), Type.Literal('http'), Type.Literal('streamable-http'), Type.Literal('streamableHttp'),
    Type.Literal('sse'), Type.Literal('websocket')
  ])),
  disabled: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
export type McpServerEntry = Static<typeof McpServerEntry>

export const PrefixMode = Type.Union([Type.Literal('always'), Type.Literal('conditional'), Type.Literal('never')])
export type PrefixMode = Static<typeof PrefixMode>

const Roles = Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { description: 'Roles the credential grants (see roles)' })

export const ApiKeyConfig = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 128, description: 'Who the key belongs to: the principal\'s id in logs and sessions' }),
  key: Type.Optional(Type.String({ minLength: 16, maxLength: 4096, description: 'The key itself (at least 16 characters); prefer keyHash in files' })),
  keyHash: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256 of the key, in hex' })),
  roles: Type.Optional(Roles)
}, { additionalProperties: false })
export type ApiKeyConfig = Static<typeof ApiKeyConfig>

export const JwtAlgorithm = Type.Union(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512', 'EdDSA'].map(a => Type.Literal(a)))

export const JwtConfig = Type.Object({
  secret: Type.Optional(Type.String({ minLength: 32, description: 'Shared secret for HS256/384/512 tokens (at least 32 characters)' })),
  publicKey: Type.Optional(Type.String({ minLength: 1, description: 'PEM public key (SPKI) for RS, PS, ES or EdDSA tokens' })),
  jwksUrl: Type.Optional(Type.String({ minLength: 1, description: 'JWKS endpoint of the issuer; fetched, cached, refetched for an unknown kid' })),
  issuer: Type.Optional(Type.String({ minLength: 1, description: 'Required iss claim' })),
  audience: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    description: 'Accepted aud claim (one of these); default: auth.oauth.resource when set'
  })),
  algorithms: Type.Optional(Type.Array(JwtAlgorithm, { minItems: 1, description: 'Accepted alg values; default: those of the key kind' })),
  rolesClaim: Type.Optional(Type.String({ minLength: 1, description: 'Claim holding the roles (default "roles"); a dotted path reaches nested claims' })),
  clockToleranceSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'Seconds of clock skew tolerated on exp and nbf' })),
  jwksCooldownSec: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, description: 'Least seconds between two JWKS fetches caused by unknown kids (default 30)' }))
}, { additionalProperties: false })
export type JwtConfig = Static<typeof JwtConfig>

export const OAuthConfig = Type.Object({
  resource: Type.String({ minLength: 1, description: 'This gateway\'s canonical URL as a resource (RFC 8707), e.g. "https://mcp.example.com/mcp"' }),
  authorizationServers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Issuer URLs of the authorization servers clients get tokens from' }),
  scopesSupported: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Scopes announced in the metadata' })),
  requiredScopes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Scopes every token must carry (403 insufficient_scope otherwise)' }))
}, { additionalProperties: false })
export type OAuthConfig = Static<typeof OAuthConfig>

const Globs = (what: string) => Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { description: what + ' ("*" matches any run of characters)' })
const Grant = (kind: string) => Type.Object({
  allow: Type.Optional(Globs(`${kind} the role may see and use, by the name clients see`)),
  deny: Type.Optional(Globs(`${kind} the role may not see or use, even when allowed`))
}, { additionalProperties: false })

export const RoleConfig = Type.Object({
  tools: Type.Optional(Grant('Tools')),
  resources: Type.Optional(Grant('Resources (by URI) and resource templates (by URI template)')),
  prompts: Type.Optional(Grant('Prompts')),
  admin: Type.Optional(Type.Boolean({ description: 'May use the admin API' }))
}, { additionalProperties: false })
export type RoleConfig = Static<typeof RoleConfig>

export const AuthConfig = Type.Object({
  apiKeys: Type.Optional(Type.Array(ApiKeyConfig, { description: 'Keys presented as X-API-Key or Authorization: Bearer' })),
  jwt: Type.Optional(JwtConfig),
  oauth: Type.Optional(OAuthConfig),
  certificates: Type.Optional(Type.Array(Type.Object({
    subject: Type.String({ minLength: 1, maxLength: 256, description: 'The common name (CN) of a client certificate signed by tls.ca' }),
    roles: Type.Optional(Roles)
  }, { additionalProperties: false }), { description: 'Client certificates (mTLS, with tls.requestCert) that authenticate as principals' })),
  openMetrics: Type.Optional(Type.Boolean({ description: 'Serve /metrics without credentials (for a scraper on a trusted network)' })),
  roles: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 128 }), RoleConfig, {
    description: 'What each role may see and call; a principal gets the union of its roles. Unset: every authenticated client sees everything'
  }))
}, { additionalProperties: false })
export type AuthConfig = Static<typeof AuthConfig>

const RateRuleFields = {
  max: Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Requests allowed per windowMs, on average' }),
  windowMs: Type.Integer({ minimum: 1, maximum: 86_400_000, description: 'The window max is counted over (ms, at most a day)' }),
  burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Requests that may come at once; default max' }))
}

export const RateLimitConfig = Type.Object({
  perIp: Type.Optional(Type.Object(RateRuleFields, {
    additionalProperties: false,
    description: 'HTTP requests per client address (an IPv6 address counts as its /64), counted before authentication'
  })),
  perPrincipal: Type.Optional(Type.Object(RateRuleFields, {
    additionalProperties: false,
    description: 'JSON-RPC requests per caller (batch elements, WebSocket frames and REST calls each count); ' +
      'keyed by principal, or by address without auth'
  })),
  perTool: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.Object({
    ...RateRuleFields,
    per: Type.Optional(Type.Union([Type.Literal('principal'), Type.Literal('gateway')], {
      description: '"principal" (default): each caller has its own budget; "gateway": all callers share one'
    }))
  }, { additionalProperties: false }), {
    description: 'tools/call requests per glob of tool names as clients see them ("github__*"); every matching entry applies'
  })),
  redis: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^rediss?://', description: 'redis://[user:password@]host:port[/db]; may name an environment variable (REDIS_URL)' }),
    keyPrefix: Type.Optional(Type.String({ maxLength: 128, description: 'Prefix of the counter keys; default "mcp-gateway:rl:"' })),
    commandTimeout: Type.Optional(Milliseconds('How long a request waits for Redis before it is counted locally (default 200)'))
  }, { additionalProperties: false, description: 'Share the counters between gateway processes; if Redis is unavailable each counts locally' }))
}, { additionalProperties: false })

export const GatewayConfigFile = Type.Object({
  $schema: Type.Optional(Type.String()),
  host: Type.Optional(Type.String({ minLength: 1 })),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  accessLog: Type.Optional(Type.Boolean({ description: 'Log one line per forwarded call (principal, method, tool, upstream, outcome, ms) at info (default false)' })),
  logFile: Type.Optional(Type.Object({
    path: Type.String({ minLength: 1, description: 'The log file; pino-roll numbers the files before the extension (gateway.log: gateway.1.log, gateway.2.log, …)' }),
    size: Type.Optional(Type.String({ pattern: '^[0-9]+[kmg]?$', description: 'Roll when the file reaches this size: a number with k, m or g (default "10m")' })),
    frequency: Type.Optional(Type.Union([Type.Literal('daily'), Type.Literal('hourly')], { description: 'Roll at least this often too (default: by size only)' })),
    keep: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Rolled files kept beside the current one (default 7)' }))
  }, { additionalProperties: false, description: 'Also write the log to a rolling file (standalone gateway; stdout keeps it too)' })),
  tracing: Type.Optional(Type.Object({
    enabled: Type.Optional(Type.Boolean({ description: 'OpenTelemetry spans per client request and upstream attempt (default: on when OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT names an exporter)' }))
  }, { additionalProperties: false, description: 'OpenTelemetry tracing; the exporter, sampler, propagators and resource come from the standard OTEL_* variables' })),
  logLevel: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)))),
  name: Type.Optional(Type.String({ minLength: 1, description: 'serverInfo.name announced to clients' })),
  instructions: Type.Optional(Type.String({ description: 'Instructions announced to clients at initialize' })),
  prefixMode: Type.Optional(PrefixMode),
  separator: Type.Optional(Type.String({ minLength: 1, maxLength: 4, pattern: '^[A-Za-z0-9_-]+$' })),
  pageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, description: 'Entries per page of a list answer' })),
  allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1 }), {
    description: 'Browser origins allowed besides the gateway\'s own; "*" allows any'
  })),
  bodyLimit: Type.Optional(Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, description: 'Largest request body accepted (bytes, after decoding); a larger one is answered 413' })),
  tls: Type.Optional(Type.Object({
    key: Type.String({ minLength: 1, description: 'Private key: PEM text, or the path of a PEM file' }),
    cert: Type.String({ minLength: 1, description: 'Certificate chain: PEM text, or the path of a PEM file' }),
    ca: Type.Optional(Type.String({ minLength: 1, description: 'CA certificates that sign client certificates (mTLS): PEM text or a path' })),
    requestCert: Type.Optional(Type.Boolean({ description: 'Ask clients for a certificate; one signed by ca whose subject is in auth.certificates authenticates as it' }))
  }, { additionalProperties: false, description: 'Serve HTTPS (standalone server)' })),
  allowedHosts: Type.Optional(Type.Array(Type.String({ minLength: 1 }), {
    description: 'Host header values accepted; default: any when listening on all interfaces, loopback names otherwise'
  })),
  sessions: Type.Optional(Type.Object({
    idleTimeout: Type.Optional(Milliseconds('A session unused this long is ended')),
    max: Type.Optional(Type.Integer({ minimum: 1, description: 'Most client sessions; a newcomer at the limit reclaims an idle one' })),
    maxPerAddress: Type.Optional(Type.Integer({ minimum: 0, description: 'Most client sessions one remote address may hold; 0 (default): no limit' })),
    maxPerPrincipal: Type.Optional(Type.Integer({ minimum: 0, description: 'Most client sessions one authenticated principal may hold; 0 (default): no limit' })),
    replayEvents: Type.Optional(Type.Integer({ minimum: 1, description: 'SSE events kept per session for Last-Event-ID resumption' })),
    replayBytes: Type.Optional(Type.Integer({ minimum: 1024, description: 'Bytes of SSE events kept per session for resumption' })),
    replayBytesTotal: Type.Optional(Type.Integer({ minimum: 1024, description: 'Bytes of SSE events kept for resumption by all sessions together; past it the oldest go first' }))
  }, { additionalProperties: false })),
  upstreamDefaults: Type.Optional(Type.Object({
    timeout: Type.Optional(Milliseconds('Deadline of one upstream call')),
    connectTimeout: Type.Optional(Milliseconds('Deadline of connecting and initializing an upstream')),
    maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    healthInterval: Type.Optional(Milliseconds('Deprecated: healthCheck.intervalMs')),
    healthCheck: Type.Optional(Type.Object(healthCheckFields, { additionalProperties: false, description: 'How every upstream\'s health is checked' })),
    reconnectMin: Type.Optional(Milliseconds('First delay before reconnecting a failed upstream')),
    reconnectMax: Type.Optional(Milliseconds('Longest delay between reconnect attempts')),
    maxSessions: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, description: 'Most client sessions held open on one upstream' })),
    sessionIdleTimeout: Type.Optional(Milliseconds('A client\'s own upstream session unused this long is closed (it reopens on use)')),
    maxConcurrent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'Most calls in flight to one upstream (0, the default: no limit)' })),
    queueSize: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'Calls that may wait for a slot per upstream (default 100)' })),
    queueTimeout: Type.Optional(Milliseconds('How long a call waits for a slot (default 5000)'))
  }, { additionalProperties: false })),
  limits: Type.Optional(Type.Object({
    maxJsonDepth: Type.Optional(Type.Integer({ minimum: 8, maximum: 4096, description: 'Deepest nesting of arrays and objects accepted in a message, from clients and from upstreams' })),
    maxBatch: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'Most messages in one JSON-RPC batch' })),
    maxUpstreamMessage: Type.Optional(Type.Integer({ minimum: 1024, description: 'Longest message taken from an upstream (characters): an answer body, an SSE event, a stdio line, a WebSocket frame' })),
    maxSubscriptions: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000, description: 'Most resource subscriptions one client session may hold' })),
    maxSubscriptionsTotal: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000000, description: 'Most resource subscriptions all client sessions may hold together' })),
    maxInFlight: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, description: 'Most forwarded requests one client session may have in flight at once' })),
    maxClientBuffer: Type.Optional(Type.Integer({ minimum: 65536, description: 'Bytes written to one client stream and not yet read by the client; beyond it the stream is closed' }))
  }, { additionalProperties: false })),
  startupWait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TIMER, description: 'How long start-up waits for upstreams to connect (ms)' })),
  shutdownTimeout: Type.Optional(Milliseconds('How long shutdown waits for in-flight calls')),
  shutdownDelay: Type.Optional(Type.Integer({
    minimum: 0,
    maximum: 600_000,
    description: 'On SIGTERM, how long /health/ready answers 503 while everything is still served, before the server stops taking requests (ms; default 0)'
  })),
  auth: Type.Optional(AuthConfig),
  rateLimit: Type.Optional(RateLimitConfig),
  balancer: Type.Optional(BalancerConfig),
  circuitBreaker: Type.Optional(Type.Object({
    failureThreshold: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000, description: 'Upstream failures in a row that open an upstream\'s circuit (default 5; 0: never)' })),
    openMs: Type.Optional(Milliseconds('How long a circuit stays open the first time (default 5000); it doubles each time it opens again')),
    maxOpenMs: Type.Optional(Milliseconds('The longest a circuit stays open (default 60000)')),
    halfOpenCalls: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Probe calls let through a half-open circuit at once (default 1)' }))
  }, { additionalProperties: false, description: 'Per upstream: calls that keep failing are stopped for a while, then probed' })),
  outlierDetection: Type.Optional(Type.Object({
    errorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Share of an upstream\'s calls failing over the window that ejects it (default 0.5; 0: not checked)' })),
    minCalls: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Calls in the window before its error rate is judged (default 10)' })),
    windowMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000, description: 'The window error rates are counted over (default 10000)' })),
    consecutiveFailures: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000, description: 'Failures in a row that eject (default 0: not checked; the circuit breaker stops an upstream that only fails)' })),
    ejectionMs: Type.Optional(Milliseconds('How long the first ejection lasts (default 30000); each recent one more adds as much')),
    maxEjectionMs: Type.Optional(Milliseconds('The longest an ejection lasts (default 300000)')),
    maxEjectedShare: Type.Optional(Type.Number({ minimum: 0, maximum: 0.99, description: 'At most this share of a service\'s replicas ejected at once, rounded down (default 0.5: never the only replica)' }))
  }, { additionalProperties: false, description: 'Passive health: replicas whose calls fail much are taken out of rotation for a while' })),
  hedging: Type.Optional(Type.Object({
    enabled: Type.Optional(Type.Boolean({ description: 'Hedge read-only calls (default false)' })),
    percentile: Type.Optional(Type.Number({ minimum: 50, maximum: 99.9, description: 'A call not answered after this percentile of its replica\'s recent latency is sent to a second replica too (default 95)' })),
    minDelayMs: Type.Optional(Milliseconds('Never hedge sooner than this (default 10)')),
    minSamples: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, description: 'Calls measured on the replica before its percentile is trusted (default 20)' }))
  }, { additionalProperties: false, description: 'Hedged requests for read-only tools and resource reads: the first answer wins, the other is cancelled; hedges spend the retry budget' })),
  overload: Type.Optional(Type.Object({
    maxEventLoopDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000, description: 'Event loop lag beyond which requests are refused with 503 (default 1000; 0: not checked)' })),
    maxHeapUsedBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Heap in use beyond which requests are refused (default 0: not checked)' })),
    maxRssBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Resident memory beyond which requests are refused (default 0: not checked)' })),
    retryAfterSec: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'Retry-After of an overload refusal (default 10)' }))
  }, { additionalProperties: false, description: 'Refuse requests with 503 while the process is overloaded, before it falls over; health probes are never refused' })),
  retryBudget: Type.Optional(Type.Object({
    ratio: Type.Optional(Type.Number({ minimum: 0, maximum: 10, description: 'Retries allowed per call made over the window (default 0.2: at most 20% extra load)' })),
    minPerSecond: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'Retries allowed per second whatever the calls (default 10)' })),
    windowMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000, description: 'The window the budget is counted over (default 10000)' }))
  }, { additionalProperties: false, description: 'How many retries of safe calls on another replica may add to the load' })),
  webhooks: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }), Type.Object({
    url: Type.String({ pattern: '^https?://', maxLength: 4096, description: 'Where alerts are POSTed (a secret in it can be written as an env reference)' }),
    format: Type.Optional(Type.Union([Type.Literal('slack'), Type.Literal('discord'), Type.Literal('json')], { description: 'The body: a Slack incoming webhook, a Discord webhook, or generic JSON (default json)' })),
    headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), Type.String(), { additionalProperties: false }))
  }, { additionalProperties: false }), { description: 'Webhooks alerts are sent to, by id' })),
  alerts: Type.Optional(Type.Array(Type.Object({
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'What the alert is called in messages (default: from when and over)' })),
    when: Type.Union([Type.Literal('upstream_down'), Type.Literal('error_rate'), Type.Literal('latency_p99'), Type.Literal('anomaly')], {
      description: 'upstream_down: not taking calls; error_rate / latency_p99: the last minute\'s, over `over`; anomaly: a latency or error-rate score over `over` (default 4)'
    }),
    over: Type.Optional(Type.Number({ minimum: 0, description: 'The threshold: an error rate (0..1), milliseconds, or an anomaly score' })),
    for: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000, description: 'How long the condition must hold before the alert fires (ms, default 0)' })),
    notify: Type.Optional(Type.Array(Type.String(), { description: 'Ids of webhooks told when it fires and when it resolves' })),
    upstreams: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Globs on upstream ids (default: every upstream)' })),
    minCalls: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Calls in the minute error_rate and latency_p99 need (default 10)' }))
  }, { additionalProperties: false }), { description: 'Alert rules, judged per upstream every alertIntervalMs' })),
  anomaly: Type.Optional(Type.Object({
    baselineMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 86_400_000, description: 'How fast an upstream\'s baselines follow a change: after this long it weighs 63% (default 300000)' })),
    warmup: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Observations before an upstream is scored (default 10)' })),
    minCalls: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Calls an upstream\'s last 10–20 s need to count as an observation (default 5)' }))
  }, { additionalProperties: false, description: 'Anomaly detection on each upstream\'s latency and error rate' })),
  alertIntervalMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000, description: 'How often alert rules and anomaly scores are evaluated (default 10000)' })),
  redis: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^rediss?://', description: 'redis://[user:password@]host:port[/db]; may name an environment variable (REDIS_URL)' }),
    keyPrefix: Type.Optional(Type.String({ maxLength: 128, description: 'Prefix of the gateway\'s keys; default "mcp-gateway:"' })),
    commandTimeout: Type.Optional(Milliseconds('How long a call waits for Redis before it does without (default 200)'))
  }, { additionalProperties: false, description: 'The Redis that gateway instances share (the result cache\'s Redis layer); each does without it while it is unavailable' })),
  cache: Type.Optional(Type.Object({
    maxBytes: Type.Optional(Type.Integer({ minimum: 1024, description: 'What the results kept in memory may add up to (default 64 MiB)' })),
    redis: Type.Optional(Type.Boolean({ description: 'A second layer in the top-level redis, shared by every instance using it (default false)' })),
    dir: Type.Optional(Type.String({ minLength: 1, description: 'A third layer in this directory, kept across restarts (one instance per directory)' })),
    maxDirBytes: Type.Optional(Type.Integer({ minimum: 65_536, description: 'What the files in dir may add up to; the oldest go first (default 256 MiB)' })),
    maxEntryBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, description: 'The largest result (UTF-8 bytes) stored in Redis or dir (default 1 MiB)' })),
    tools: Type.Optional(Type.Array(Type.Object({
      pattern: Type.String({ minLength: 1, description: 'A glob on client-visible tool names ("search__*")' }),
      ttlMs: Milliseconds('How long a result is served from the cache'),
      force: Type.Optional(Type.Boolean({ description: 'Cache tools not annotated readOnlyHint too (default false)' }))
    }, { additionalProperties: false }), { description: 'Per tool; the first matching entry applies (after the service\'s own cache setting)' }))
  }, { additionalProperties: false, description: 'The result cache: results of read-only tools served again for ttlMs (see README: Result cache)' })),
  dashboard: Type.Optional(Type.Object({
    enabled: Type.Optional(Type.Boolean({ description: 'Serve the live dashboard at /dashboard (default true)' })),
    intervalMs: Type.Optional(Type.Integer({ minimum: 500, maximum: 60_000, description: 'How often the dashboard\'s feed sends the figures (default 2000)' }))
  }, { additionalProperties: false, description: 'The live dashboard at /dashboard: behind the admin role (or the admin key) when auth is configured' })),
  admin: Type.Optional(Type.Object({
    apiKey: Type.Optional(Type.String({ minLength: 16, description: 'Enables /admin/*; at least 16 characters' }))
  }, { additionalProperties: false })),
  registryFile: Type.Optional(Type.String({ minLength: 1, description: 'Where runtime registry changes are persisted' })),
  metrics: Type.Optional(Type.Object({
    enabled: Type.Optional(Type.Boolean()),
    prefix: Type.Optional(Type.String({ pattern: '^[a-zA-Z_:][a-zA-Z0-9_:]*$' })),
    defaultMetrics: Type.Optional(Type.Boolean({ description: 'Also export process metrics (CPU, memory, event loop)' }))
  }, { additionalProperties: false })),
  servers: Type.Optional(Type.Array(ServerConfig)),
  mcpServers: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 64 }), McpServerEntry))
}, { additionalProperties: false })
export type GatewayConfigFile = Static<typeof GatewayConfigFile>
