import fp from 'fastify-plugin'
import { type Alert, AlertRules, type UpstreamObservation } from '../src/alerts/alert-rules.js'
import { AnomalyDetector, type AnomalyScores } from '../src/alerts/anomaly.js'
import { WebhookSender } from '../src/alerts/webhooks.js'

/**
 * Alerts and anomaly detection: every `alertIntervalMs` each upstream's recent figures (from `mcpStats`) are scored
 * against its own baseline (src/alerts/anomaly.ts) and the `alerts` rules judged on them and on its status
 * (src/alerts/alert-rules.ts); an alert that fires or resolves is logged, counted and sent to its webhooks
 * (src/alerts/webhooks.ts). `app.mcpAlerts` tells /stats and the dashboard what is firing and what is anomalous.
 */

export interface GatewayAlerts {
  /** Alerts pending or firing. */
  active (): Alert[]
  /** Alerts that fired and resolved, newest first. */
  resolved (): Alert[]
  /** An upstream's latest anomaly scores. */
  anomaly (id: string): AnomalyScores
  /** Evaluates now (the timer does it every alertIntervalMs). */
  evaluate (): void
}

declare module 'fastify' {
  interface FastifyInstance {
    mcpAlerts: GatewayAlerts
  }
}

export default fp(async function mcpGatewayAlerts (app) {
  const config = app.mcpConfig
  const log = app.log.child({ component: 'alerts' })
  const metrics = app.mcpMetrics
  const anomalies = new AnomalyDetector(config.anomaly)
  const sender = new WebhookSender(config.webhooks, { gateway: config.name, log, onOutcome: (_webhook, outcome) => metrics.alertNotification(outcome) })
  const rules = new AlertRules(config.alerts, (alert, transition) => {
    if (transition === 'firing') log.warn({ rule: alert.rule, upstream: alert.upstream, value: alert.value }, `alert firing: ${alert.message}`)
    else log.info({ rule: alert.rule, upstream: alert.upstream }, `alert resolved: ${alert.rule} on ${alert.upstream}`)
    metrics.alertTransition(transition)
    sender.notify(alert, transition)
  })

  const evaluate = () => {
    const now = Date.now()
    const observations: UpstreamObservation[] = app.mcpProxy.upstreamHealth().map((u) => {
      const recent = app.mcpStats.recent(u.id)
      const anomaly = anomalies.observe(u.id, recent.calls, recent.p50Ms, recent.errorRate)
      metrics.anomalyScore(u.id, anomaly.latency, anomaly.errors)
      const minute = app.mcpStats.windows(u.id)?.minute
      return {
        id: u.id,
        service: u.service,
        // Connecting for the first time (start-up, a replaced or re-enabled server) is not being down.
        status: u.status === 'error' && u.state === 'connecting' && u.reason === undefined ? 'active' : u.status,
        reason: u.reason,
        calls: minute?.calls ?? 0,
        errorRate: minute?.errorRate ?? 0,
        p99Ms: minute?.p99Ms ?? 0,
        anomaly
      }
    })
    rules.evaluate(now, observations)
    metrics.alertsFiring(rules.active().filter(a => a.state === 'firing').length)
  }
  const unsubscribe = app.mcpRegistry.onChange((change) => {
    if (change.type === 'removed') {
      anomalies.forget(change.server.id)
      metrics.anomalyScore(change.server.id, 0, 0)
    }
  })

  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => { timer = setInterval(evaluate, config.alertIntervalMs).unref() })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    unsubscribe()
    sender.close()
  })
  app.decorate('mcpAlerts', {
    active: () => rules.active(),
    resolved: () => rules.resolved(),
    anomaly: (id) => anomalies.scores(id),
    evaluate
  } satisfies GatewayAlerts)
}, { name: 'mcp-gateway-alerts', fastify: '5.x', dependencies: ['mcp-gateway-config', 'mcp-gateway-metrics', 'mcp-gateway-registry', 'mcp-gateway-stats', 'mcp-gateway-proxy'] })
