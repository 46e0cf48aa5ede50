import { ERR_UPSTREAM_CLOSED, ERR_UPSTREAM_UNAVAILABLE, UpstreamFailure } from '../errors.js'

/**
 * What a raw error met on the way to an upstream means for the request (socket, resolver and undici codes): whether
 * it may have been sent and whether the upstream may be gone, in words a client can read — as the one
 * UpstreamFailure type the forwarder decides on.
 */

/** Socket and resolver errors: what they mean for a request, in words a client can read. */
const NETWORK_ERRORS: Record<string, { text: string, sent: boolean, suspect: boolean }> = {
  ECONNREFUSED: { text: 'connection refused', sent: false, suspect: true },
  ENOTFOUND: { text: 'host not found', sent: false, suspect: true },
  EAI_AGAIN: { text: 'host name lookup failed', sent: false, suspect: true },
  EHOSTUNREACH: { text: 'host unreachable', sent: false, suspect: true },
  ENETUNREACH: { text: 'network unreachable', sent: false, suspect: true },
  UND_ERR_CONNECT_TIMEOUT: { text: 'connecting timed out', sent: false, suspect: true },
  // The gateway's own limits, not the upstream's fault: nothing was sent, and the upstream is not to blame.
  EMFILE: { text: 'the gateway has no file descriptors left', sent: false, suspect: false },
  ENFILE: { text: 'the system has no file descriptors left', sent: false, suspect: false },
  ECONNRESET: { text: 'connection reset', sent: true, suspect: true },
  EPIPE: { text: 'connection broken', sent: true, suspect: true },
  UND_ERR_SOCKET: { text: 'connection failed', sent: true, suspect: true },
  UND_ERR_CLOSED: { text: 'connection closed', sent: true, suspect: true },
  UND_ERR_HEADERS_TIMEOUT: { text: 'no answer headers in time', sent: true, suspect: true },
  UND_ERR_BODY_TIMEOUT: { text: 'the answer stalled', sent: true, suspect: true }
}

/**
 * Any error met while sending a request to `upstream` or reading its answer, as an UpstreamFailure (errors that
 * already are one, and upstream JSON-RPC errors, pass as they are). `sent` is what is known when the code does not
 * tell: whether the request had been handed to the transport.
 */
export function upstreamFailure (err: unknown, upstream: string, sent = true): Error {
  if (err instanceof UpstreamFailure) return err
  const e = err as { code?: unknown, rpcError?: unknown, message?: unknown, cause?: { code?: unknown } } | null
  if (e !== null && typeof e === 'object' && (e.rpcError !== undefined || (typeof e.code === 'string' && e.code.startsWith('MCPGW_ERR_')))) return err as Error
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined
  const known = code === undefined ? undefined : NETWORK_ERRORS[code]
  if (known !== undefined) {
    const detail = `${known.text} (${code as string})`
    return known.sent
      ? new ERR_UPSTREAM_CLOSED(upstream, detail, { sent: true, suspect: known.suspect })
      : new ERR_UPSTREAM_UNAVAILABLE(upstream, `upstream ${upstream}: ${detail}`, { sent: false, suspect: known.suspect })
  }
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return new ERR_UPSTREAM_CLOSED(upstream, `${message}${code === undefined ? '' : ` (${code})`}`, { sent, suspect: true })
}
