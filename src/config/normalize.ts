import { isDeepStrictEqual } from 'node:util'
import type { GatewayConfigFile, McpServerEntry, ServerConfig } from '../../schemas/config.js'
import { ServerId } from '../../schemas/config.js'
import { DEFAULT_MAX_JSON_DEPTH, DEFAULT_MAX_UPSTREAM_MESSAGE } from '../json.js'
import { normalizeAuth } from './auth.js'
import { normalizeCache } from './cache.js'
import { normalizeRateLimit } from './rate-limit.js'
import { normalizeRedis } from './redis.js'
import { DEFAULT_OUTLIERS } from '../balancing/outliers.js'
import { DEFAULT_ANOMALY } from '../alerts/anomaly.js'
import { kResolvedConfig } from '../symbols.js'
import type { AlertRule } from '../alerts/alert-rules.js'
import type { BalancerSettings, GatewayConfig, HealthCheckSettings, UpstreamDefaults, UpstreamDefinition, UpstreamTransport } from './types.js'

/** Defaults and cross-field rules the JSON schema cannot express; every problem names its field. */

export const DEFAULT_UPSTREAM: UpstreamDefaults = Object.freeze({
  timeout: 60_000,
  connectTimeout: 10_000,
  maxConnections: 16,
  healthCheck: Object.freeze({ intervalMs: 30_000, timeoutMs: 5000, unhealthyThreshold: 2, healthyThreshold: 1, retryIntervalMs: 2000 }),
  reconnectMin: 500,
  reconnectMax: 30_000,
  maxSessions: 100,
  sessionIdleTimeout: 5 * 60_000,
  maxConcurrent: 0,
  queueSize: 100,
  queueTimeout: 5000
})

export const DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  bodyLimit: 4 * 1024 * 1024,
  port: 3000,
  logLevel: 'info',
  name: 'fastify-mcp-gateway',
  prefixMode: 'always' as const,
  separator: '__',
  pageSize: 500,
  idleTimeout: 30 * 60_000,
  replayEvents: 500,
  replayBytes: 1024 * 1024,
  replayBytesTotal: 64 * 1024 * 1024,
  maxSessions: 10_000,
  maxBatch: 100,
  maxSubscriptions: 1000,
  maxSubscriptionsTotal: 20_000,
  maxInFlight: 100,
  maxClientBuffer: 64 * 1024 * 1024,
  startupWait: 5000,
  shutdownTimeout: 10_000,
  metricsPrefix: 'mcp_gateway_'
})

const serverIdPattern = new RegExp((ServerId as { pattern?: string }).pattern as string)

/** Headers the gateway writes itself: a definition may not set them (hop-by-hop ones would break the connection). */
const MANAGED_HEADERS = new Set([
  'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer',
  'proxy-connection', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions'
])

export function isResolvedConfig (value: unknown): value is GatewayConfig {
  return value !== null && typeof value === 'object' && (value as Record<symbol, unknown>)[kResolvedConfig] === true
}

/** Raised with every problem found, so one run of the gateway reports them all. */
export class ConfigProblems extends Error {
  constructor (readonly problems: string[]) {
    super(problems.join('; '))
  }
}

export function normalizeConfig (file: GatewayConfigFile): GatewayConfig {
  const problems: string[] = []
  const defaults = upstreamDefaults(file.upstreamDefaults, problems)
  const servers: UpstreamDefinition[] = []
  const seen = new Map<string, string>()
  const add = (input: ServerConfig, field: string) => {
    const server = tryNormalizeServer(input, defaults, field, problems)
    if (server === undefined) return
    const previous = seen.get(server.id)
    if (previous !== undefined) {
      problems.push(`${field}: id ${JSON.stringify(server.id)} is already used by ${previous}; ids must be unique`)
      return
    }
    seen.set(server.id, field)
    servers.push(server)
  }
  file.servers?.forEach((server, i) => add(server, `servers[${i}]`))
  for (const [key, entry] of Object.entries(file.mcpServers ?? {})) {
    const field = `mcpServers${/^[A-Za-z_$][\w$-]*$/.test(key) ? '.' + key : `[${JSON.stringify(key)}]`}`
    if (key.length > 64) {
      problems.push(`${field}: the name is ${key.length} characters long; at most 64 (it becomes the tool prefix)`)
      continue
    }
    if (!serverIdPattern.test(key)) {
      problems.push(`${field}: the name must start with a letter or digit and use only letters, digits, "_", "-", "." ` +
        '(it becomes the tool prefix)')
      continue
    }
    const server = fromMcpServerEntry(key, entry, field, problems)
    if (server !== undefined) add(server, field)
  }
  problems.push(...serviceConflicts(servers))
  for (const [i, origin] of (file.allowedOrigins ?? []).entries()) {
    if (origin !== '*' && !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(origin)) {
      problems.push(`allowedOrigins[${i}]: ${JSON.stringify(origin)} is not an origin like "https://app.example.com" or "*"`)
    }
  }
  const auth = normalizeAuth(file.auth, problems)
  if ((file.outlierDetection?.ejectionMs ?? DEFAULT_OUTLIERS.ejectionMs) > (file.outlierDetection?.maxEjectionMs ?? DEFAULT_OUTLIERS.maxEjectionMs)) {
    problems.push('outlierDetection.ejectionMs: must not be larger than outlierDetection.maxEjectionMs')
  }
  if ((file.circuitBreaker?.openMs ?? 5000) > (file.circuitBreaker?.maxOpenMs ?? 60_000)) {
    problems.push('circuitBreaker.openMs: must not be larger than circuitBreaker.maxOpenMs')
  }
  const rateLimit = normalizeRateLimit(file.rateLimit, problems)
  const redis = normalizeRedis(file.redis, problems)
  const cache = normalizeCache(file.cache, servers, redis, problems)
  const webhooks = Object.fromEntries(Object.entries(file.webhooks ?? {}).map(([id, w]) => [id, { url: w.url, format: w.format ?? 'json', headers: w.headers ?? {} }]))
  const alerts = normalizeAlerts(file.alerts ?? [], webhooks, problems)
  if ((file.auth?.certificates ?? []).length > 0 && (file.tls?.ca === undefined || file.tls.requestCert !== true)) {
    problems.push('auth.certificates: needs tls.ca (the CA that signs the client certificates) and tls.requestCert: true; ' +
      'without a ca, any publicly issued certificate with a listed CN would authenticate')
  }
  if (problems.length > 0) throw new ConfigProblems(problems)

  const config: GatewayConfig = {
    host: file.host ?? DEFAULTS.host,
    port: file.port ?? DEFAULTS.port,
    logLevel: file.logLevel ?? DEFAULTS.logLevel,
    accessLog: file.accessLog ?? false,
    logFile: file.logFile === undefined ? null : { path: file.logFile.path, size: file.logFile.size ?? '10m', frequency: file.logFile.frequency ?? null, keep: file.logFile.keep ?? 7 },
    tracing: { enabled: file.tracing?.enabled ?? null },
    name: file.name ?? DEFAULTS.name,
    ...(file.instructions !== undefined ? { instructions: file.instructions } : {}),
    prefixMode: file.prefixMode ?? DEFAULTS.prefixMode,
    separator: file.separator ?? DEFAULTS.separator,
    pageSize: file.pageSize ?? DEFAULTS.pageSize,
    allowedOrigins: (file.allowedOrigins ?? []).map(o => o === '*' ? o : o.toLowerCase()),
    allowedHosts: file.allowedHosts?.map(h => h.toLowerCase()) ?? null,
    bodyLimit: file.bodyLimit ?? DEFAULTS.bodyLimit,
    tls: file.tls === undefined ? null : { ...file.tls, requestCert: file.tls.requestCert ?? false },
    sessions: {
      idleTimeout: file.sessions?.idleTimeout ?? DEFAULTS.idleTimeout,
      max: file.sessions?.max ?? DEFAULTS.maxSessions,
      maxPerAddress: file.sessions?.maxPerAddress ?? 0,
      maxPerPrincipal: file.sessions?.maxPerPrincipal ?? 0,
      replayEvents: file.sessions?.replayEvents ?? DEFAULTS.replayEvents,
      replayBytes: file.sessions?.replayBytes ?? DEFAULTS.replayBytes,
      replayBytesTotal: file.sessions?.replayBytesTotal ?? DEFAULTS.replayBytesTotal
    },
    upstreamDefaults: defaults,
    limits: {
      maxJsonDepth: file.limits?.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
      maxBatch: file.limits?.maxBatch ?? DEFAULTS.maxBatch,
      maxUpstreamMessage: file.limits?.maxUpstreamMessage ?? DEFAULT_MAX_UPSTREAM_MESSAGE,
      maxSubscriptions: file.limits?.maxSubscriptions ?? DEFAULTS.maxSubscriptions,
      maxSubscriptionsTotal: file.limits?.maxSubscriptionsTotal ?? DEFAULTS.maxSubscriptionsTotal,
      maxInFlight: file.limits?.maxInFlight ?? DEFAULTS.maxInFlight,
      maxClientBuffer: file.limits?.maxClientBuffer ?? DEFAULTS.maxClientBuffer
    },
    startupWait: file.startupWait ?? DEFAULTS.startupWait,
    shutdownTimeout: file.shutdownTimeout ?? DEFAULTS.shutdownTimeout,
    shutdownDelay: file.shutdownDelay ?? 0,
    auth,
    rateLimit,
    balancer: balancerSettings(file.balancer ?? {}),
    overload: { maxEventLoopDelayMs: 1000, maxHeapUsedBytes: 0, maxRssBytes: 0, retryAfterSec: 10, ...file.overload },
    retryBudget: { ratio: 0.2, minPerSecond: 10, windowMs: 10_000, ...file.retryBudget },
    outlierDetection: { ...DEFAULT_OUTLIERS, ...file.outlierDetection },
    hedging: file.hedging?.enabled === true
      ? { percentile: file.hedging.percentile ?? 95, minDelayMs: file.hedging.minDelayMs ?? 10, minSamples: file.hedging.minSamples ?? 20 }
      : null,
    circuitBreaker: { failureThreshold: 5, openMs: 5000, maxOpenMs: 60_000, halfOpenCalls: 1, ...file.circuitBreaker },
    admin: { apiKey: file.admin?.apiKey ?? null },
    dashboard: { enabled: file.dashboard?.enabled ?? true, intervalMs: file.dashboard?.intervalMs ?? 2000 },
    cache,
    redis,
    webhooks,
    alerts,
    alertIntervalMs: file.alertIntervalMs ?? 10_000,
    anomaly: { ...DEFAULT_ANOMALY, ...file.anomaly },
    registryFile: file.registryFile ?? null,
    metrics: {
      enabled: file.metrics?.enabled ?? true,
      prefix: file.metrics?.prefix ?? DEFAULTS.metricsPrefix,
      defaultMetrics: file.metrics?.defaultMetrics ?? true
    },
    servers
  }
  Object.defineProperty(config, kResolvedConfig, { value: true })
  return deepFreeze(config)
}

/** Alert rules with their defaults; thresholds each condition needs, webhook ids that exist, names unique. */
function normalizeAlerts (input: NonNullable<GatewayConfigFile['alerts']>, webhooks: Record<string, unknown>, problems: string[]): AlertRule[] {
  const names = new Set<string>()
  return input.map((rule, i) => {
    const field = `alerts[${i}]`
    const over = rule.over ?? (rule.when === 'anomaly' ? 4 : rule.when === 'upstream_down' ? 0 : undefined)
    if (over === undefined) problems.push(`${field}.over: ${rule.when} needs a threshold (${rule.when === 'error_rate' ? 'a share of calls, 0..1' : 'milliseconds'})`)
    if (rule.when === 'error_rate' && (over ?? 0) > 1) problems.push(`${field}.over: an error rate is a share of calls, 0..1 (0.05 is 5%)`)
    for (const id of rule.notify ?? []) {
      if (!(id in webhooks)) problems.push(`${field}.notify: no webhook ${JSON.stringify(id)} in webhooks`)
    }
    const name = rule.name ?? `${rule.when}${rule.when === 'upstream_down' ? '' : ` > ${over ?? '?'}`}`
    if (names.has(name)) problems.push(`${field}.name: ${JSON.stringify(name)} is used by another rule; give each a name of its own`)
    names.add(name)
    return { name, when: rule.when, over: over ?? 0, forMs: rule.for ?? 0, notify: rule.notify ?? [], upstreams: rule.upstreams ?? [], minCalls: rule.minCalls ?? 10 }
  })
}

/** `upstreamDefaults` over the built-in ones; `healthInterval` is the old spelling of `healthCheck.intervalMs`. */
function upstreamDefaults (input: GatewayConfigFile['upstreamDefaults'], problems: string[]): UpstreamDefaults {
  const { healthInterval, healthCheck, ...rest } = input ?? {}
  if (healthInterval !== undefined && healthCheck?.intervalMs !== undefined && healthInterval !== healthCheck.intervalMs) {
    problems.push('upstreamDefaults.healthInterval: contradicts upstreamDefaults.healthCheck.intervalMs; keep healthCheck.intervalMs (healthInterval is its old spelling)')
  }
  const defaults: UpstreamDefaults = {
    ...DEFAULT_UPSTREAM,
    ...rest,
    healthCheck: healthCheckSettings(DEFAULT_UPSTREAM.healthCheck, { ...(healthInterval !== undefined ? { intervalMs: healthInterval } : {}), ...healthCheck })
  }
  if (defaults.reconnectMin > defaults.reconnectMax) {
    problems.push('upstreamDefaults.reconnectMin: must not be larger than upstreamDefaults.reconnectMax')
  }
  return defaults
}

/**
 * `input` over `base`; a check deadline or retry interval not set is never longer than the interval (an upstream
 * checked every 500 ms is rechecked within 500 ms after a failure, not 2 s).
 */
function healthCheckSettings (base: HealthCheckSettings, input: Partial<HealthCheckSettings>): HealthCheckSettings {
  const merged = { ...base, ...input }
  return {
    ...merged,
    timeoutMs: input.timeoutMs ?? Math.min(merged.timeoutMs, merged.intervalMs),
    retryIntervalMs: input.retryIntervalMs ?? Math.min(merged.retryIntervalMs, merged.intervalMs)
  }
}

/** Normalizes one upstream (from the config file or the admin API); throws ConfigProblems. */
export function normalizeServer (input: ServerConfig, defaults: UpstreamDefaults, field = 'server'): UpstreamDefinition {
  const problems: string[] = []
  const server = tryNormalizeServer(input, defaults, field, problems)
  if (server === undefined) throw new ConfigProblems(problems)
  return server
}

function tryNormalizeServer (input: ServerConfig, defaults: UpstreamDefaults, field: string, problems: string[]): UpstreamDefinition | undefined {
  const before = problems.length
  if (input.url !== undefined && input.command !== undefined) {
    problems.push(`${field}: set either url (an HTTP server) or command (a stdio server), not both`)
  } else if (input.url === undefined && input.command === undefined) {
    problems.push(`${field}: needs url (an HTTP server) or command (a stdio server)`)
  }
  const transport: UpstreamTransport = input.transport ?? inferTransport(input)
  if (transport === 'stdio' && input.command === undefined && input.url !== undefined) {
    problems.push(`${field}.transport: "stdio" needs command, but url is set`)
  }
  if (transport !== 'stdio' && input.url === undefined && input.command !== undefined) {
    problems.push(`${field}.transport: ${JSON.stringify(transport)} needs url, but command is set`)
  }
  if (input.url !== undefined) {
    try {
      const url = new URL(input.url)
      if (url.username !== '' || url.password !== '') {
        problems.push(`${field}.url: put credentials in headers, not in the URL`)
      }
      const webSocket = url.protocol === 'ws:' || url.protocol === 'wss:'
      if (transport === 'websocket' && !webSocket) {
        problems.push(`${field}.url: transport "websocket" needs a ws:// or wss:// URL, not ${JSON.stringify(input.url)}`)
      } else if (transport !== 'websocket' && transport !== 'stdio' && webSocket) {
        problems.push(`${field}.url: ${JSON.stringify(input.url)} is a WebSocket URL, which needs transport "websocket" ` +
          `(transport is ${JSON.stringify(transport)}; it takes http:// or https://)`)
      }
    } catch {
      problems.push(`${field}.url: ${JSON.stringify(input.url)} is not a valid URL`)
    }
  }
  if (transport === 'stdio' && input.headers !== undefined && Object.keys(input.headers).length > 0) {
    problems.push(`${field}.headers: only HTTP upstreams send headers; use env for a stdio server`)
  }
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    if (MANAGED_HEADERS.has(name.toLowerCase())) {
      problems.push(`${field}.headers.${name}: the gateway sets this header itself (it belongs to the connection or to the MCP session)`)
    } else if (/[\r\n\0]/.test(value)) {
      problems.push(`${field}.headers.${name}: a header value cannot hold CR, LF or NUL`)
    }
  }
  const withNul = [['command', input.command], ['cwd', input.cwd], ...(input.args ?? []).map((a, i) => [`args[${i}]`, a]),
    ...Object.entries(input.env ?? {}).flatMap(([k, v]) => [[`env.${k}`, k], [`env.${k}`, v]])].find(([, v]) => v?.includes('\0') === true)
  if (withNul !== undefined) problems.push(`${field}.${withNul[0] as string}: cannot hold a NUL character`)
  if (input.stateless !== undefined && input.sessionMode !== undefined && (input.stateless !== (input.sessionMode === 'shared'))) {
    problems.push(`${field}: stateless ${input.stateless} contradicts sessionMode ${JSON.stringify(input.sessionMode)}; keep sessionMode (stateless is its old spelling)`)
  }
  if (input.forwardIdentity === true && transport !== 'streamable-http') {
    problems.push(`${field}.forwardIdentity: the caller's identity travels in HTTP headers of each request, which only a streamable-http upstream has`)
  }
  if (transport === 'stdio' && input.sessionMode === 'per-client') {
    problems.push(`${field}.sessionMode: a stdio server is one process, one session: it can only be "shared" (or "auto")`)
  }
  if (input.healthCheck?.path !== undefined && (transport === 'stdio' || transport === 'websocket')) {
    problems.push(`${field}.healthCheck.path: an HTTP GET check needs an HTTP upstream; a ${transport} server is checked with an MCP ping`)
  }
  if (problems.length > before) return undefined

  const server: UpstreamDefinition = {
    id: input.id,
    transport,
    ...(input.url !== undefined ? { url: input.url } : {}),
    ...(input.command !== undefined ? { command: input.command } : {}),
    args: input.args ?? [],
    env: input.env ?? {},
    ...(input.cwd !== undefined ? { cwd: input.cwd } : {}),
    service: input.service ?? input.id,
    weight: input.weight ?? 1,
    maxConnections: input.maxConnections ?? defaults.maxConnections,
    timeout: input.timeout ?? defaults.timeout,
    headers: input.headers ?? {},
    enabled: input.enabled ?? true,
    tags: input.tags ?? [],
    sessionMode: input.sessionMode ?? (input.stateless === true ? 'shared' : 'auto'),
    maxSessions: input.maxSessions ?? defaults.maxSessions,
    forwardIdentity: input.forwardIdentity ?? false,
    ...(input.tools !== undefined ? { tools: input.tools } : {}),
    ...(input.prompts !== undefined ? { prompts: input.prompts } : {}),
    ...(input.balancer !== undefined ? { balancer: balancerSettings(input.balancer) } : {}),
    maxConcurrent: input.maxConcurrent ?? defaults.maxConcurrent,
    queue: { size: input.queue?.size ?? defaults.queueSize, timeoutMs: input.queue?.timeoutMs ?? defaults.queueTimeout },
    healthCheck: healthCheckSettings(defaults.healthCheck, input.healthCheck ?? {}),
    ...(input.cache !== undefined ? { cache: { ttlMs: input.cache.ttlMs, force: input.cache.force ?? false, resources: input.cache.resources ?? false } } : {})
  }
  return server
}

/** A ws:// or wss:// url is a WebSocket server, any other url a Streamable HTTP one, a command a stdio one. */
function inferTransport (input: ServerConfig): UpstreamTransport {
  if (input.command !== undefined) return 'stdio'
  return input.url !== undefined && /^wss?:/i.test(input.url) ? 'websocket' : 'streamable-http'
}

/** The spellings of `type` in the hosts' files (VS Code and Cursor write legacy HTTP+SSE as "sse"). */
const TYPE_TRANSPORT: Record<NonNullable<McpServerEntry['type']>, UpstreamTransport> = {
  stdio: 'stdio',
  http: 'streamable-http',
  'streamable-http': 'streamable-http',
  streamableHttp: 'streamable-http',
  sse: 'sse',
  websocket: 'websocket'
}

function fromMcpServerEntry (id: string, entry: McpServerEntry, field: string, problems: string[]): ServerConfig | undefined {
  const { type, disabled, ...rest } = entry
  if (disabled !== undefined && rest.enabled !== undefined && disabled === rest.enabled) {
    problems.push(`${field}: enabled and disabled contradict each other; keep one`)
    return undefined
  }
  let transport = rest.transport
  if (type !== undefined) {
    const fromType = TYPE_TRANSPORT[type]
    if (transport !== undefined && transport !== fromType) {
      problems.push(`${field}: type ${JSON.stringify(type)} and transport ${JSON.stringify(transport)} disagree; keep one`)
      return undefined
    }
    transport = fromType
  }
  return {
    id,
    ...rest,
    ...(transport !== undefined ? { transport } : {}),
    ...(disabled !== undefined ? { enabled: !disabled } : {})
  }
}

/**
 * Replicas of one service are one logical server: service-wide options (sessionMode, tools, prompts) must agree
 * wherever they are set. `candidate` checks one new definition against the others (the admin API).
 */
export function serviceConflicts (servers: readonly UpstreamDefinition[], candidate?: UpstreamDefinition): string[] {
  const problems: string[] = []
  const others = candidate === undefined ? servers : [...servers.filter(s => s.id !== candidate.id), candidate]
  // Per service and option: the first replica that sets it; every later one that sets it must agree.
  const first = new Map<string, UpstreamDefinition>()
  for (const server of others) {
    for (const key of ['tools', 'prompts', 'sessionMode', 'balancer', 'cache'] as const) {
      const value = server[key]
      if (key !== 'sessionMode' && value === undefined) continue
      const slot = server.service + '\0' + key
      const holder = first.get(slot)
      if (holder === undefined) {
        first.set(slot, server)
        continue
      }
      if (isDeepStrictEqual(holder[key], value)) continue
      if (candidate !== undefined && server !== candidate && holder !== candidate) continue
      problems.push(key === 'sessionMode'
        ? `server ${JSON.stringify(server.id)}: sessionMode differs from ${JSON.stringify(holder.id)}, ` +
          `another replica of service ${JSON.stringify(server.service)}; replicas must agree`
        : `server ${JSON.stringify(server.id)}: its ${key} options differ from those of ${JSON.stringify(holder.id)}, ` +
          `another replica of service ${JSON.stringify(server.service)}; set them the same, or on one replica only`)
    }
  }
  return problems
}

/** A balancer entry with its defaults: peak-ewma, hashed on the address. */
export function balancerSettings (input: { strategy?: BalancerSettings['strategy'], hashOn?: BalancerSettings['hashOn'] }): BalancerSettings {
  return { strategy: input.strategy ?? 'peak-ewma', hashOn: input.hashOn ?? 'address' }
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}
