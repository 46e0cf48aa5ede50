/**
 * The logging surface the engine needs. A pino logger (and so Fastify's `app.log`) satisfies it; the engine never
 * imports Fastify to get one.
 */
export interface Logger {
  error (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  info (obj: object, msg?: string): void
  debug (obj: object, msg?: string): void
  child (bindings: Record<string, unknown>): Logger
}

export const silentLogger: Logger = {
  error () {},
  warn () {},
  info () {},
  debug () {},
  child () { return silentLogger }
}
