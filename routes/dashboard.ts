import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { statsReport } from './stats-report.js'

/**
 * The live dashboard at /dashboard/: its page, script and styles from dashboard/ (plain files, no build step) and
 * uPlot from its package (no CDN); and /dashboard/feed, an event stream that sends the /stats report to every open
 * dashboard every `dashboard.intervalMs` — computed once per tick whatever the number of viewers, and only while
 * someone watches. With `auth` configured the feed needs the admin role or the admin key (the page carries no data
 * and asks for a key); without it the feed is as open as /status. The actions go through the admin API.
 */

/** A viewer that has not read this much of the feed is dropped (it reconnects by itself). */
const MAX_PENDING_BYTES = 4 * 1024 * 1024
/** The page may load scripts, styles and data from the gateway alone; nothing may frame it. */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

export default async function dashboardRoutes (app: FastifyInstance) {
  const { intervalMs } = app.mcpConfig.dashboard
  const auth = app.mcpAuth
  // Admin API: the key or an admin role. With auth but neither, nobody could open it: the feed says so.
  const feedGuards = auth.enabled || auth.adminEnabled ? [auth.guardOrigin, auth.requireAdmin] : [auth.guardOrigin]

  await app.register(async function dashboardFiles (scope) {
    scope.addHook('onRequest', async (request, reply) => { reply.header('content-security-policy', CONTENT_SECURITY_POLICY) })
    await scope.register(fastifyStatic, { root: dashboardDirectory(), prefix: '/dashboard/', decorateReply: false, index: 'index.html' })
    await scope.register(fastifyStatic, { root: uplotDirectory(), prefix: '/dashboard/vendor/uplot/', decorateReply: false })
    scope.get('/dashboard', (request, reply) => reply.redirect(request.url.replace(/\/dashboard(\?|$)/, '/dashboard/$1')))
  })

  const viewers = new Set<FastifyReply>()
  let timer: NodeJS.Timeout | undefined
  const send = () => {
    const report = { ...statsReport(app, { tools: 20, errors: 20 }), actions: auth.adminEnabled, name: app.mcpConfig.name }
    const event = `event: stats\ndata: ${JSON.stringify(report)}\n\n`
    for (const reply of viewers) {
      if (reply.raw.writableLength > MAX_PENDING_BYTES) reply.raw.destroy()
      else reply.raw.write(event)
    }
  }

  app.get('/dashboard/feed', { onRequest: feedGuards }, (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack()
    // Gone while its onRequest hooks ran (a JWKS fetch, a Redis count): nothing to add, nothing will close it.
    if (request.raw.destroyed || reply.raw.destroyed) return
    reply.raw.writeHead(200, {
      ...reply.getHeaders() as Record<string, string>,
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive'
    })
    viewers.add(reply)
    reply.raw.on('close', () => {
      viewers.delete(reply)
      if (viewers.size === 0) {
        clearInterval(timer)
        timer = undefined
      }
    })
    send()
    timer ??= setInterval(send, intervalMs).unref()
  })

  // preClose, not onClose: Fastify's own onClose waits for every connection to end, an open feed's included.
  app.addHook('preClose', async () => {
    clearInterval(timer)
    timer = undefined
    for (const reply of viewers) reply.raw.end()
    viewers.clear()
  })
}

/** dashboard/ at the repository's (or package's) root: this module runs from routes/ and from dist/routes/. */
function dashboardDirectory (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'dashboard')
    if (existsSync(join(candidate, 'index.html'))) return candidate
    dir = dirname(dir)
  }
  throw new Error('the dashboard files (dashboard/index.html) were not found beside the gateway; set dashboard.enabled: false to run without them')
}

/** uPlot's dist/ (its package's main file lives there). */
function uplotDirectory (): string {
  return dirname(createRequire(import.meta.url).resolve('uplot'))
}
