/** MCP protocol revisions the gateway speaks, and the rules for agreeing on one. */

/**
 * The client requests that reach an upstream: only they can be cancelled, report progress or make the upstream talk
 * back, and their params are checked before they travel.
 */
export const FORWARDED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete'])

export const LATEST_PROTOCOL_VERSION = '2025-11-25'

/** Newest first. 2024-11-05 clients use the legacy transport semantics; the body shapes are compatible. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']

export function isSupportedProtocolVersion (version: string): boolean {
  return SUPPORTED_PROTOCOL_VERSIONS.includes(version)
}

/** Echo the client's version when we speak it, otherwise offer our latest (the client may then disconnect). */
export function negotiateProtocolVersion (requested: unknown): string {
  return typeof requested === 'string' && isSupportedProtocolVersion(requested) ? requested : LATEST_PROTOCOL_VERSION
}
