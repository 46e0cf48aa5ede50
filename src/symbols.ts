/** Private brands and state keys, kept in one place (as Fastify does in lib/symbols.js). */

/** Marks a configuration object produced by `resolveConfig`, so plugins do not validate it twice. */
export const kResolvedConfig = Symbol('mcp-gateway.resolved-config')
