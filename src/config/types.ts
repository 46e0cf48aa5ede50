import type { NameFilter, PrefixMode } from '../../schemas/config.js'

/** The configuration after validation and defaults: what every part of the gateway reads. Frozen. */

export type UpstreamTransport = 'streamable-http' | 'sse' | 'websocket' | 'stdio'

/** Which upstream session serves a client: see SessionBroker. */
export type SessionMode = 'auto' | 'shared' | 'per-client'

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
  /** Most client sessions held open on this upstream. */
  readonly maxSessions: number
  readonly tools?: NameFilter
  readonly prompts?: NameFilter
}

export interface UpstreamDefaults {
  readonly timeout: number
  readonly connectTimeout: number
  readonly maxConnections: number
  readonly healthInterval: number
  readonly reconnectMin: number
  readonly reconnectMax: number
  readonly maxSessions: number
  readonly sessionIdleTimeout: number
}

export interface GatewayConfig {
  readonly host: string
  readonly port: number
  readonly logLevel: string
  readonly name: string
  readonly instructions?: string
  readonly prefixMode: PrefixMode
  readonly separator: string
  readonly pageSize: number
  readonly allowedOrigins: readonly string[]
  /** null: decided from the listening address (loopback names only when bound to loopback). */
  readonly allowedHosts: readonly string[] | null
  readonly sessions: {
    readonly idleTimeout: number
    readonly max: number
    readonly maxPerAddress: number
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
  readonly admin: { readonly apiKey: string | null }
  readonly registryFile: string | null
  readonly metrics: { readonly enabled: boolean, readonly prefix: string, readonly defaultMetrics: boolean }
  readonly servers: readonly UpstreamDefinition[]
}
