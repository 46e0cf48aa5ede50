/**
 * The MCP shapes the gateway reads. Only the fields it routes on are typed; everything else an upstream sends is
 * carried through untouched, so new protocol fields reach clients without a gateway release.
 */

export interface Tool {
  name: string
  description?: string
  inputSchema: Record<string, unknown>
  annotations?: { readOnlyHint?: boolean, idempotentHint?: boolean, [key: string]: unknown }
  [key: string]: unknown
}

export interface Resource {
  uri: string
  name: string
  [key: string]: unknown
}

export interface ResourceTemplate {
  uriTemplate: string
  name: string
  [key: string]: unknown
}

export interface Prompt {
  name: string
  description?: string
  [key: string]: unknown
}

export type ListKind = 'tools' | 'resources' | 'prompts'

/** What one service offers, as listed by the gateway's own session with one of its replicas. */
export interface ServiceListing {
  tools: Tool[]
  resources: Resource[]
  resourceTemplates: ResourceTemplate[]
  prompts: Prompt[]
  /** Changes whenever the content of that kind changes; resources covers templates too. */
  digests: Record<ListKind, string>
  capabilities: Record<string, unknown>
  serverInfo: { name: string, version: string, [key: string]: unknown }
  protocolVersion: string
}
