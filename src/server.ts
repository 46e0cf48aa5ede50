import closeWithGrace from 'close-with-grace'
import type { FastifyHttpOptions, FastifyInstance } from 'fastify'
import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { ServerOptions } from 'node:https'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { type ConfigOverrides, loadConfigFile } from './config/load.js'
import type { GatewayConfig } from './config/types.js'
import { ERR_CONFIG_READ } from './errors.js'

/**
 * The standalone gateway: load and validate the config (nothing listens if it is invalid), build the app, listen,
 * and shut down gracefully on SIGTERM/SIGINT — readiness 503 for `shutdownDelay` while still serving, then stop
 * accepting, let in-flight calls finish up to `shutdownTimeout`, close every upstream (stdio servers included), exit.
 */

export interface StartOptions {
  configPath: string
  overrides?: ConfigOverrides
  env?: NodeJS.ProcessEnv
}

/**
 * Where the log goes: stdout, and with `logFile` also a rolling file through pino-roll (a pino transport: the file is
 * written in a worker thread, never on the request path; stdout stays, so a container's collector still reads it).
 */
function logDestination (config: GatewayConfig): ReturnType<typeof pino.transport> | undefined {
  const file = config.logFile
  if (file === null) return undefined
  return pino.transport({
    targets: [
      { target: 'pino/file', level: config.logLevel, options: { destination: 1 } },
      {
        target: 'pino-roll',
        level: config.logLevel,
        options: { file: file.path, size: file.size, ...(file.frequency !== null ? { frequency: file.frequency } : {}), limit: { count: file.keep }, mkdir: true }
      }
    ]
  })
}

export async function startServer ({ configPath, overrides = {}, env = process.env }: StartOptions): Promise<FastifyInstance> {
  const config = await loadConfigFile(configPath, env, overrides)
  const logger = pino({ level: config.logLevel, name: config.name }, logDestination(config))
  const https = config.tls === null ? undefined : await httpsOptions(config.tls)
  // With `https`, Fastify builds an https.Server; the app's server type stays http's (the API used is the same).
  const app = await buildApp({ config }, { loggerInstance: logger, bodyLimit: config.bodyLimit, ...(https !== undefined ? { https } : {}) } as FastifyHttpOptions<Server>)
  // The grace period covers the drain delay too: in-flight calls still get their shutdownTimeout after it.
  closeWithGrace({ delay: config.shutdownDelay + config.shutdownTimeout, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'shutting down after an uncaught error')
    else logger.info({ signal, delay: config.shutdownDelay }, 'shutting down')
    // Readiness goes 503 first, so a load balancer stops sending new clients while everything is still served.
    app.mcpProxy.drain()
    if (err === undefined && config.shutdownDelay > 0) await new Promise(resolve => setTimeout(resolve, config.shutdownDelay))
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
  const scheme = https === undefined ? 'http' : 'https'
  logger.info({ mcp: `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${(app.server.address() as { port: number }).port}/mcp` }, 'gateway ready')
  return app
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

/**
 * The TLS options of `tls`: each of key, cert and ca is PEM text or the path of a PEM file. With `requestCert`,
 * a client without a certificate (or with one not signed by `ca`) still connects: it may authenticate otherwise,
 * and only a verified certificate whose subject is in `auth.certificates` counts as a credential.
 */
async function httpsOptions (tls: NonNullable<GatewayConfig['tls']>): Promise<ServerOptions> {
  const pem = async (value: string, field: string) => {
    if (value.trimStart().startsWith('-----BEGIN')) return value
    try {
      return await readFile(value, 'utf8')
    } catch (err) {
      throw new ERR_CONFIG_READ(`${value} (tls.${field})`, (err as Error).message)
    }
  }
  return {
    key: await pem(tls.key, 'key'),
    cert: await pem(tls.cert, 'cert'),
    ...(tls.ca !== undefined ? { ca: await pem(tls.ca, 'ca') } : {}),
    requestCert: tls.requestCert,
    rejectUnauthorized: false
  }
}
