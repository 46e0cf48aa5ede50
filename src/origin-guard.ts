import { ERR_HOST_FORBIDDEN, ERR_ORIGIN_FORBIDDEN, type FastifyError } from './errors.js'

/**
 * DNS-rebinding and cross-origin protection for the MCP endpoints (the spec: servers MUST validate Origin, and
 * answer 403 to an invalid one).
 *
 * - Host: when a request arrives over loopback, its Host header must name loopback (localhost, 127.0.0.1, [::1])
 *   unless `allowedHosts` lists it — a page on evil.example.com that rebinds its name to 127.0.0.1 is refused.
 *   With `allowedHosts` set, every request's Host must be in it.
 * - Origin: requests without Origin (SDKs, scripts) pass; a browser's Origin must be the gateway's own (same host
 *   and port as the Host header) or listed in `allowedOrigins` ("*" allows any).
 */

export interface GuardOptions {
  allowedOrigins: readonly string[]
  allowedHosts: readonly string[] | null
}

export interface GuardInput {
  origin: string | undefined
  host: string | undefined
  /** The local address the request arrived on (socket.localAddress). */
  localAddress: string | undefined
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1'])

export function createRequestGuard (options: GuardOptions): (input: GuardInput) => FastifyError | undefined {
  const anyOrigin = options.allowedOrigins.includes('*')
  const origins = new Set(options.allowedOrigins)
  const hosts = options.allowedHosts === null ? null : new Set(options.allowedHosts)
  return ({ origin, host, localAddress }) => {
    const hostHeader = (host ?? '').toLowerCase()
    if (hosts !== null) {
      if (!hosts.has(hostHeader) && !hosts.has(hostnameOf(hostHeader))) return new ERR_HOST_FORBIDDEN(JSON.stringify(host ?? ''))
    } else if (isLoopbackAddress(localAddress) && !LOOPBACK_NAMES.has(hostnameOf(hostHeader))) {
      return new ERR_HOST_FORBIDDEN(JSON.stringify(host ?? ''))
    }
    if (origin === undefined || anyOrigin) return undefined
    const normalized = origin.toLowerCase()
    if (origins.has(normalized)) return undefined
    try {
      const url = new URL(normalized)
      if (url.host === hostHeader && (url.protocol === 'http:' || url.protocol === 'https:')) return undefined
    } catch {}
    return new ERR_ORIGIN_FORBIDDEN(JSON.stringify(origin))
  }
}

/** `example.com:3000` → `example.com`; `[::1]:3000` → `[::1]` */
function hostnameOf (host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    return end === -1 ? host : host.slice(0, end + 1)
  }
  const colon = host.indexOf(':')
  return colon === -1 ? host : host.slice(0, colon)
}

function isLoopbackAddress (address: string | undefined): boolean {
  if (address === undefined) return false
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.')
}
