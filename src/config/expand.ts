/**
 * `${NAME}`, `${env:NAME}` (the Cursor / VS Code spelling) and `${NAME:-fallback}` in the strings of a config file
 * that carry secrets or places (so secrets stay out of files), expanded in place before validation:
 * `"url": "${MCP_URL}"` is checked as the URL it becomes. Expanded: a server's url, command, cwd, args and the
 * values of its env and headers; the client API keys, the JWT secret, public key and JWKS URL; the admin key;
 * the Redis URLs (`redis.url`, `rateLimit.redis.url`).
 * `${input:…}` (VS Code's prompt for a value) has no meaning for a server process and is refused.
 */

type Expand = (value: string, field: string) => string

export function expandEnvironment (file: Record<string, unknown>, expand: Expand, problems: string[], failed: string[] = []): void {
  const one = (value: unknown, where: string) => {
    if (typeof value !== 'string') return value
    try {
      return expand(value, where)
    } catch (err) {
      problems.push((err as Error).message)
      failed.push(where)
      return value
    }
  }
  for (const [server, field] of serverEntries(file)) {
    for (const key of ['url', 'command', 'cwd'] as const) if (key in server) server[key] = one(server[key], `${field}.${key}`)
    if (Array.isArray(server.args)) server.args = server.args.map((a: unknown, i: number) => one(a, `${field}.args[${i}]`))
    for (const key of ['env', 'headers'] as const) {
      const record = server[key]
      if (isRecord(record)) server[key] = Object.fromEntries(Object.entries(record).map(([k, v]) => [k, one(v, `${field}.${key}.${k}`)]))
    }
  }
  if (isRecord(file.auth)) {
    const auth = file.auth = { ...file.auth }
    if (Array.isArray(auth.apiKeys)) {
      auth.apiKeys = auth.apiKeys.map((key: unknown, i: number) => isRecord(key) && 'key' in key ? { ...key, key: one(key.key, `auth.apiKeys[${i}].key`) } : key)
    }
    if (isRecord(auth.jwt)) {
      const jwt = auth.jwt = { ...auth.jwt }
      for (const key of ['secret', 'publicKey', 'jwksUrl'] as const) if (key in jwt) jwt[key] = one(jwt[key], `auth.jwt.${key}`)
    }
  }
  if (isRecord(file.rateLimit) && isRecord(file.rateLimit.redis) && 'url' in file.rateLimit.redis) {
    file.rateLimit = { ...file.rateLimit, redis: { ...file.rateLimit.redis, url: one(file.rateLimit.redis.url, 'rateLimit.redis.url') } }
  }
  if (isRecord(file.redis) && 'url' in file.redis) file.redis = { ...file.redis, url: one(file.redis.url, 'redis.url') }
  if (isRecord(file.admin) && 'apiKey' in file.admin) file.admin = { ...file.admin, apiKey: one(file.admin.apiKey, 'admin.apiKey') }
}

/** Copies of the server entries (in `servers` and `mcpServers`), put back in place, with the field that names each. */
function serverEntries (file: Record<string, unknown>): Array<[Record<string, unknown>, string]> {
  const entries: Array<[Record<string, unknown>, string]> = []
  if (Array.isArray(file.servers)) {
    file.servers = file.servers.map((server: unknown, i: number) => {
      if (!isRecord(server)) return server
      const copy = { ...server }
      entries.push([copy, `servers[${i}]`])
      return copy
    })
  }
  if (isRecord(file.mcpServers)) {
    const map: Record<string, unknown> = {}
    for (const [key, server] of Object.entries(file.mcpServers)) {
      if (!isRecord(server)) {
        map[key] = server
        continue
      }
      const copy = { ...server }
      entries.push([copy, `mcpServers${/^[A-Za-z_$][\w$-]*$/.test(key) ? '.' + key : `[${JSON.stringify(key)}]`}`])
      map[key] = copy
    }
    file.mcpServers = map
  }
  return entries
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

export function envExpander (env: NodeJS.ProcessEnv): Expand {
  return (value, field) => {
    const input = /\$\{input:([^}]*)\}/.exec(value)
    if (input !== null) {
      throw new Error(`${field}: \${input:${input[1]}} asks an editor to prompt for a value, which a server cannot do; ` +
        // eslint-disable-next-line no-template-curly-in-string -- the text shows the syntax to write
        'set an environment variable and write ${env:NAME} (or ${NAME}) instead')
    }
    return value.replace(/\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, fallback?: string) => {
      const found = env[name]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      throw new Error(`${field}: environment variable ${name} is not set (write \${${name}:-default} for a fallback)`)
    })
  }
}
