import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { type ConfigOverrides, loadConfigFile } from './config/load.js'

/**
 * The standalone gateway: load and validate the config (nothing listens if it is invalid), build the app, listen,
 * and shut down gracefully on SIGTERM/SIGINT — stop accepting, let in-flight calls finish up to `shutdownTimeout`,
 * close every upstream (stdio servers included), then exit.
 */

export interface StartOptions {
  configPath: string
  overrides?: ConfigOverrides
  env?: NodeJS.ProcessEnv
}

export async function startServer ({ configPath, overrides = {}, env = process.env }: StartOptions): Promise<FastifyInstance> {
  const config = await loadConfigFile(configPath, env, overrides)
  const logger = pino({ level: config.logLevel, name: config.name })
  const app = await buildApp({ config }, { loggerInstance: logger })
  closeWithGrace({ delay: config.shutdownTimeout, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'shutting down after an uncaught error')
    else logger.info({ signal }, 'shutting down')
    // Node closes idle keep-alive connections only when close() starts; a connection whose call finishes during
    // shutdown would otherwise hold the process open until its keep-alive timeout.
    const sweeper = setInterval(() => app.server.closeIdleConnections(), 100)
    try {
      await app.close()
    } finally {
      clearInterval(sweeper)
    }
  })
  await app.listen({ host: config.host, port: config.port })
  if (config.auth === null && !isLoopback(config.host)) {
    logger.warn({ host: config.host }, 'no auth configured and listening beyond loopback: anyone who can reach this port can list and call every tool; configure auth (README: Securing the gateway)')
  }
  logger.info({ mcp: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${(app.server.address() as { port: number }).port}/mcp` }, 'gateway ready')
  return app
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}
