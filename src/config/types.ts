import type { NameFilter, PrefixMode } from '../../schemas/config.js'
import type { AlertRule } from '../alerts/alert-rules.js'
import type { AnomalySettings } from '../alerts/anomaly.js'
import type { OutlierSettings } from '../balancing/outliers.js'
import type { WebhookSettings } from '../alerts/webhooks.js'

/** The configuration after validation and defaults: what every part of the gateway reads. Frozen. */

export type UpstreamTransport = 'streamable-http' | 'sse' | 'websocket' | 'stdio'

/** Which upstream session serves a client: see SessionBroker. */
export type SessionMode = 'auto' | 'shared' | 'per-client'

export type BalancingStrategy =
  | 'peak-ewma' | 'round-robin' | 'least-connections' | 'weighted' | 'random' | 'ip-hash' | 'consistent-hash' | 'health-based'

/** How a service's calls pick a replica. */
export interface BalancerSettings {
  readonly strategy: BalancingStrategy
  /** What consistent-hash keys on; ip-hash is always the address. */
  readonly hashOn: 'address' | 'principal' | 'session'
}

/** How an upstream's health is checked (see UpstreamConnection). */
export interface HealthCheckSettings {
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly unhealthyThreshold: number
  readonly healthyThreshold: number
  readonly retryIntervalMs: number
  /** An HTTP GET of this path on the server's origin instead of an MCP ping. */
  readonly path?: string
}

export interface UpstreamDefinition {
  readonly id: string
  readonly transport: UpstreamTransport
  readonly url?: string
  readonly command?: string
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, string>>
  readonly cwd?: string
  readonly service: string
  readonly weight: number
  readonly maxConnections: number
  readonly timeout: number
  readonly headers: Readonly<Record<string, string>>
  readonly enabled: boolean
  readonly tags: readonly string[]
  readonly sessionMode: SessionMode
  /** Send the caller's principal as headers on each request (streamable-http). */
  readonly forwardIdentity: boolean
  /** Most client sessions held open on this upstream. */
  readonly maxSessions: number
  readonly tools?: NameFilter
  readonly prompts?: NameFilter
  /** The service's balancing, when this replica sets it (replicas must agree). */
  readonly balancer?: BalancerSettings
  /** Most calls in flight to it (0: no limit); beyond, calls wait in `queue`. */
  readonly maxConcurrent: number
  readonly queue: { readonly size: number, readonly timeoutMs: number }
  readonly healthCheck: HealthCheckSettings
  /** Its service's results cached (replicas must agree). */
  readonly cache?: CacheRuleSettings
}

export interface CacheRuleSettings {
  readonly ttlMs: number
  readonly force: boolean
  /** Its resources/read results too. */
  readonly resources: boolean
}

export interface CacheSettings {
  /** The memory layer's bound. */
  readonly maxBytes: number
  readonly tools: ReadonlyArray<{ readonly pattern: string, readonly ttlMs: number, readonly force: boolean }>
  /** The Redis layer, in the top-level `redis`. */
  readonly redis: boolean
  /** The file layer's directory; null: none. */
  readonly dir: string | null
  readonly maxDirBytes: number
  /** The largest result the Redis and file layers store (UTF-8 bytes). */
  readonly maxEntryBytes: number
}

export interface RedisSettings { readonly url: string, readonly keyPrefix: string, readonly commandTimeout: number }

export interface UpstreamDefaults {
  readonly timeout: number
  readonly connectTimeout: number
  readonly maxConnections: number
  readonly healthCheck: Omit<HealthCheckSettings, 'path'>
  readonly reconnectMin: number
  readonly reconnectMax: number
  readonly maxSessions: number
  readonly sessionIdleTimeout: number
  readonly maxConcurrent: number
  readonly queueSize: number
  readonly queueTimeout: number
}

/** A client API key, kept as the SHA-256 of the key (hex): the key itself is not held after start-up. */
export interface ApiKeyDefinition {
  readonly name: string
  readonly digest: string
  readonly roles: readonly string[]
}

export type JwtKeySource =
  | { readonly kind: 'secret', readonly secret: string }
  | { readonly kind: 'publicKey', readonly pem: string }
  | { readonly kind: 'jwks', readonly url: string }

export interface JwtSettings {
  readonly key: JwtKeySource
  readonly issuer: string | null
  /** Accepted audiences (one must match); null: not checked. */
  readonly audience: readonly string[] | null
  readonly algorithms: readonly string[]
  /** Path of the claim with the roles, split at dots. */
  readonly rolesClaim: readonly string[]
  readonly clockToleranceSec: number
  /** Least seconds between JWKS fetches for unknown kids. */
  readonly jwksCooldownSec: number
}

/** The MCP authorization spec's resource-server side (RFC 9728 metadata, RFC 8707 audience). */
export interface OAuthSettings {
  readonly resource: string
  readonly authorizationServers: readonly string[]
  readonly scopesSupported: readonly string[]
  readonly requiredScopes: readonly string[]
}

/** Allow and deny globs for one kind of item; deny wins. */
export interface GrantSettings {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
}

export interface RoleSettings {
  readonly tools: GrantSettings
  readonly resources: GrantSettings
  readonly prompts: GrantSettings
  readonly admin: boolean
}

export interface AuthSettings {
  readonly apiKeys: readonly ApiKeyDefinition[]
  /** Client certificate subjects (CN) admitted as principals, with their roles. */
  readonly certificates: ReadonlyArray<{ readonly subject: string, readonly roles: readonly string[] }>
  readonly jwt: JwtSettings | null
  readonly oauth: OAuthSettings | null
  readonly openMetrics: boolean
  /** null: every authenticated principal sees and calls everything. */
  readonly roles: Readonly<Record<string, RoleSettings>> | null
}

/** A rate: `max` per `windowMs` on average, `burst` at once. */
export interface RateRuleSettings {
  readonly max: number
  readonly windowMs: number
  readonly burst: number
}

export interface RateLimitSettings {
  readonly perIp: RateRuleSettings | null
  readonly perPrincipal: RateRuleSettings | null
  /** In configuration order; every entry whose pattern matches a tool applies. */
  readonly perTool: ReadonlyArray<{ readonly pattern: string, readonly rule: RateRuleSettings, readonly per: 'principal' | 'gateway' }>
  readonly redis: RedisSettings | null
}

export interface GatewayConfig {
  readonly host: string
  readonly port: number
  readonly logLevel: string
  /** One info line per forwarded call. */
  readonly accessLog: boolean
  /** Also log to a rolling file (standalone); null: stdout only. */
  readonly logFile: { readonly path: string, readonly size: string, readonly frequency: 'daily' | 'hourly' | null, readonly keep: number } | null
  /** OpenTelemetry tracing; `enabled` null: as the OTEL_* variables say (see plugins/tracing.ts). */
  readonly tracing: { readonly enabled: boolean | null }
  readonly name: string
  readonly instructions?: string
  readonly prefixMode: PrefixMode
  readonly separator: string
  readonly pageSize: number
  readonly allowedOrigins: readonly string[]
  /** Largest request body accepted, in bytes (after decoding). */
  readonly bodyLimit: number
  /** HTTPS for the standalone server: PEM texts or file paths, read at start-up. */
  readonly tls: { readonly key: string, readonly cert: string, readonly ca?: string, readonly requestCert: boolean } | null
  /** null: decided from the listening address (loopback names only when bound to loopback). */
  readonly allowedHosts: readonly string[] | null
  readonly sessions: {
    readonly idleTimeout: number
    readonly max: number
    readonly maxPerAddress: number
    readonly maxPerPrincipal: number
    /** Bounds of the per-session SSE event store that Last-Event-ID resumes from. */
    readonly replayEvents: number
    readonly replayBytes: number
    /** What all sessions' event stores may hold together. */
    readonly replayBytesTotal: number
  }
  readonly upstreamDefaults: UpstreamDefaults
  readonly limits: {
    readonly maxJsonDepth: number
    readonly maxBatch: number
    readonly maxUpstreamMessage: number
    /** Resource subscriptions one client session may hold. */
    readonly maxSubscriptions: number
    /** Resource subscriptions all client sessions may hold together. */
    readonly maxSubscriptionsTotal: number
    /** Forwarded requests one client session may have in flight at once. */
    readonly maxInFlight: number
    /** Bytes written to one client stream that the client has not read yet; beyond it, the stream is closed. */
    readonly maxClientBuffer: number
  }
  readonly startupWait: number
  readonly shutdownTimeout: number
  /** On SIGTERM, how long readiness is 503 before the server stops taking requests. */
  readonly shutdownDelay: number
  /** null: no client authentication; the gateway is open to whoever reaches it. */
  readonly auth: AuthSettings | null
  /** null: no rate limits. */
  readonly rateLimit: RateLimitSettings | null
  /** The balancing of services whose replicas set none. */
  readonly balancer: BalancerSettings
  /** When the process refuses requests as overloaded (0: that bound is not checked). */
  readonly overload: { readonly maxEventLoopDelayMs: number, readonly maxHeapUsedBytes: number, readonly maxRssBytes: number, readonly retryAfterSec: number }
  /** How many retries may add to the load. */
  readonly retryBudget: { readonly ratio: number, readonly minPerSecond: number, readonly windowMs: number }
  /** Passive health: outlier ejection (see balancing/outliers.ts). */
  readonly outlierDetection: OutlierSettings
  /** Hedged requests for read-only calls; null: off. */
  readonly hedging: { readonly percentile: number, readonly minDelayMs: number, readonly minSamples: number } | null
  /** Each upstream's circuit breaker. */
  readonly circuitBreaker: {
    readonly failureThreshold: number
    readonly openMs: number
    readonly maxOpenMs: number
    readonly halfOpenCalls: number
  }
  readonly admin: { readonly apiKey: string | null }
  readonly dashboard: { readonly enabled: boolean, readonly intervalMs: number }
  /** null: no result cache (unless a server sets its own `cache`, which turns it on with the default size). */
  readonly cache: CacheSettings | null
  /** The Redis gateway instances share (the cache's Redis layer); null: none. */
  readonly redis: RedisSettings | null
  readonly webhooks: Readonly<Record<string, WebhookSettings>>
  readonly alerts: readonly AlertRule[]
  readonly alertIntervalMs: number
  readonly anomaly: AnomalySettings
  readonly registryFile: string | null
  readonly metrics: { readonly enabled: boolean, readonly prefix: string, readonly defaultMetrics: boolean }
  readonly servers: readonly UpstreamDefinition[]
}
