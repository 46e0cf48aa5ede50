import { readFile } from 'node:fs/promises'
import { GatewayConfigFile } from '../../schemas/config.js'
import { ERR_CONFIG_INVALID, ERR_CONFIG_READ } from '../errors.js'
import { envExpander, expandEnvironment } from './expand.js'
import { ConfigProblems, normalizeConfig } from './normalize.js'
import type { GatewayConfig } from './types.js'
import { schemaProblems } from './validate.js'

/**
 * Reading the configuration: file → environment overrides → command-line overrides → JSON-schema validation →
 * defaults and cross-field rules. Any problem becomes one MCPGW_ERR_CONFIG_INVALID listing every field at fault.
 */

export interface ConfigOverrides {
  port?: number
  host?: string
  logLevel?: string
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export async function loadConfigFile (path: string, env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Promise<GatewayConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ERR_CONFIG_READ(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ERR_CONFIG_INVALID(` in ${path}: the file is not valid JSON (${(err as Error).message})`)
  }
  return resolveConfig(parsed, { source: path, env, overrides })
}

export interface ResolveOptions {
  /** Named in error messages (a file path, or "options" when embedded). */
  source?: string
  env?: NodeJS.ProcessEnv
  overrides?: ConfigOverrides
  /** Apply PORT, HOST, LOG_LEVEL and ADMIN_API_KEY (standalone); an embedding app passes false. */
  envOverrides?: boolean
}

/** Validates a configuration object (from a file, or passed to the plugin) and applies the environment. */
export function resolveConfig (input: unknown, { source = 'options', env = process.env, overrides = {}, envOverrides = true }: ResolveOptions = {}): GatewayConfig {
  const problems: string[] = []
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ERR_CONFIG_INVALID(` in ${source}: expected a JSON object`)
  }
  const file = { ...(input as Record<string, unknown>) }
  if (envOverrides) applyEnv(file, env, problems)
  const unexpanded: string[] = []
  expandEnvironment(file, envExpander(env), problems, unexpanded)
  if (overrides.port !== undefined) file.port = overrides.port
  if (overrides.host !== undefined) file.host = overrides.host
  if (overrides.logLevel !== undefined) file.logLevel = overrides.logLevel
  // A field whose variable is missing is already reported; its unexpanded text would only fail its pattern too.
  problems.push(...schemaProblems(GatewayConfigFile, file).filter(p => !unexpanded.some(field => p.startsWith(field + ':'))))
  if (problems.length > 0) throw invalid(source, problems)
  try {
    return normalizeConfig(file as GatewayConfigFile)
  } catch (err) {
    if (err instanceof ConfigProblems) throw invalid(source, err.problems)
    throw err
  }
}

function applyEnv (file: Record<string, unknown>, env: NodeJS.ProcessEnv, problems: string[]): void {
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = Number(env.PORT)
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      problems.push(`PORT (environment): must be an integer from 0 to 65535, got ${JSON.stringify(env.PORT)}`)
    } else file.port = port
  }
  if (env.HOST !== undefined && env.HOST !== '') file.host = env.HOST
  if (env.LOG_LEVEL !== undefined && env.LOG_LEVEL !== '') {
    if (!LOG_LEVELS.includes(env.LOG_LEVEL)) {
      problems.push(`LOG_LEVEL (environment): must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(env.LOG_LEVEL)}`)
    } else file.logLevel = env.LOG_LEVEL
  }
  if (env.ADMIN_API_KEY !== undefined && env.ADMIN_API_KEY !== '') {
    if (env.ADMIN_API_KEY.length < 16) {
      problems.push('ADMIN_API_KEY (environment): must be at least 16 characters')
    } else {
      const admin = file.admin
      file.admin = { ...(admin !== null && typeof admin === 'object' ? admin : {}), apiKey: env.ADMIN_API_KEY }
    }
  }
  // REDIS_URL shares the rate-limit counters of a config that has rate limits and names no Redis itself.
  const rateLimit = file.rateLimit as Record<string, unknown> | null | undefined
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '' && rateLimit !== null && typeof rateLimit === 'object' && rateLimit.redis === undefined) {
    file.rateLimit = { ...rateLimit, redis: { url: env.REDIS_URL } }
  }
}

function invalid (source: string, problems: string[]) {
  const err = new ERR_CONFIG_INVALID(` in ${source}:\n  - ${problems.join('\n  - ')}`)
  return Object.assign(err, { problems })
}
