import { request } from 'undici'
import type { Logger } from '../logger.js'
import type { Alert, AlertTransition } from './alert-rules.js'

/**
 * Sends alert transitions to webhooks: Slack (incoming webhook `{text}`), Discord (`{content, embeds}`) or generic
 * JSON (`{status, alert, gateway}`). Each message is retried with backoff (1 s, doubling, 5 attempts; a 429's
 * Retry-After is honoured) and then dropped with a warning; at most `MAX_PENDING` messages wait, the oldest going
 * first, so an unreachable receiver costs bounded memory. Delivery outcomes go to `onOutcome` (metrics).
 */

export type WebhookFormat = 'slack' | 'discord' | 'json'

export interface WebhookSettings {
  readonly url: string
  readonly format: WebhookFormat
  readonly headers: Readonly<Record<string, string>>
}

export interface WebhookSenderOptions {
  readonly gateway: string
  readonly log: Logger
  readonly onOutcome?: (webhook: string, outcome: 'sent' | 'retried' | 'dropped') => void
  /** First retry delay (ms); doubles each time. */
  readonly retryMs?: number
  readonly attempts?: number
  readonly timeoutMs?: number
}

const MAX_PENDING = 1000

interface Message {
  readonly webhook: string
  readonly body: string
  attempt: number
}

export class WebhookSender {
  readonly #pending = new Set<Message>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #closed = false

  constructor (private readonly webhooks: Readonly<Record<string, WebhookSettings>>, private readonly options: WebhookSenderOptions) {}

  /** Tells the alert's webhooks of its transition. */
  notify (alert: Alert, transition: AlertTransition): void {
    for (const id of alert.notify) {
      const webhook = this.webhooks[id]
      if (webhook === undefined) continue
      this.#enqueue({ webhook: id, body: JSON.stringify(formatAlert(webhook.format, alert, transition, this.options.gateway)), attempt: 0 })
    }
  }

  /** Messages waiting for delivery or a retry. */
  get pending (): number {
    return this.#pending.size
  }

  close (): void {
    this.#closed = true
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    this.#pending.clear()
  }

  #enqueue (message: Message): void {
    if (this.#pending.size >= MAX_PENDING) {
      const oldest = this.#pending.values().next().value as Message
      this.#pending.delete(oldest)
      this.options.onOutcome?.(oldest.webhook, 'dropped')
    }
    this.#pending.add(message)
    this.#send(message).catch(() => {})
  }

  async #send (message: Message): Promise<void> {
    const webhook = this.webhooks[message.webhook] as WebhookSettings
    const timeout = this.options.timeoutMs ?? 10_000
    let retryAfterMs: number | undefined
    let why: string
    try {
      const res = await request(webhook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...webhook.headers },
        body: message.body,
        headersTimeout: timeout,
        bodyTimeout: timeout
      })
      await res.body.dump().catch(() => {})
      if (res.statusCode >= 200 && res.statusCode < 300) {
        this.#pending.delete(message)
        this.options.onOutcome?.(message.webhook, 'sent')
        return
      }
      why = `HTTP ${res.statusCode}`
      const header = res.headers['retry-after']
      const seconds = Number(Array.isArray(header) ? header[0] : header)
      if (res.statusCode === 429 && Number.isFinite(seconds)) retryAfterMs = Math.min(300_000, seconds * 1000)
    } catch (err) {
      why = (err as Error).message
    }
    if (this.#closed || !this.#pending.has(message)) return
    message.attempt++
    if (message.attempt >= (this.options.attempts ?? 5)) {
      this.#pending.delete(message)
      this.options.onOutcome?.(message.webhook, 'dropped')
      this.options.log.warn({ webhook: message.webhook, attempts: message.attempt, reason: why }, 'alert webhook failed; the message is dropped')
      return
    }
    this.options.onOutcome?.(message.webhook, 'retried')
    const delay = retryAfterMs ?? (this.options.retryMs ?? 1000) * 2 ** (message.attempt - 1)
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      // Dropped meanwhile (the queue was full): not sent after all.
      if (this.#pending.has(message)) this.#send(message).catch(() => {})
    }, delay)
    timer.unref()
    this.#timers.add(timer)
  }
}

/** The body a webhook of `format` is sent for one transition. */
export function formatAlert (format: WebhookFormat, alert: Alert, transition: AlertTransition, gateway: string): unknown {
  const firing = transition === 'firing'
  const title = `${firing ? 'FIRING' : 'RESOLVED'}: ${alert.rule} on ${alert.upstream}`
  const at = new Date((firing ? alert.firedAt : alert.resolvedAt) ?? Date.now()).toISOString()
  switch (format) {
    case 'slack':
      return {
        text: `${firing ? ':red_circle:' : ':large_green_circle:'} *${title}* (${gateway})\n${alert.message}`,
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text: `${firing ? ':red_circle:' : ':large_green_circle:'} *${title}*\n${alert.message}` } },
          { type: 'context', elements: [{ type: 'mrkdwn', text: `${gateway} · service ${alert.service} · ${alert.when} · ${at}` }] }
        ]
      }
    case 'discord':
      return {
        content: `**${title}** (${gateway})`,
        embeds: [{
          title,
          description: alert.message,
          color: firing ? 0xef4444 : 0x10b981,
          timestamp: at,
          fields: [
            { name: 'Upstream', value: alert.upstream, inline: true },
            { name: 'Service', value: alert.service, inline: true },
            { name: 'Condition', value: alert.when, inline: true }
          ]
        }]
      }
    case 'json':
      return {
        status: transition,
        gateway,
        at,
        alert: {
          rule: alert.rule,
          when: alert.when,
          upstream: alert.upstream,
          service: alert.service,
          value: alert.value,
          threshold: alert.threshold,
          message: alert.message,
          since: new Date(alert.since).toISOString(),
          ...(alert.firedAt !== undefined ? { firedAt: new Date(alert.firedAt).toISOString() } : {}),
          ...(alert.resolvedAt !== undefined ? { resolvedAt: new Date(alert.resolvedAt).toISOString() } : {})
        }
      }
  }
}
