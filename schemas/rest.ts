import Type, { type Static } from 'typebox'

/**
 * The plain-HTTP endpoints for clients without an MCP SDK. Request bodies are closed and validated; reply schemas
 * describe (and serialize) what upstreams send, leaving room for fields newer protocol revisions add.
 */

const Open = <P extends Record<string, import('typebox').TSchema>>(properties: P, description?: string) =>
  Type.Object(properties, { additionalProperties: true, ...(description !== undefined ? { description } : {}) })

/** The body may be omitted (a bare POST lists the first page). */
export const ListBody = Type.Union([
  Type.Object({
    cursor: Type.Optional(Type.String({ minLength: 1, description: 'nextCursor of the previous page' }))
  }, { additionalProperties: false }),
  Type.Null(),
  Type.Undefined()
])
export type ListBody = Static<typeof ListBody>

export const CallToolBody = Type.Object({
  name: Type.String({ minLength: 1, description: 'Tool name as listed by /mcp/tools/list' }),
  arguments: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Tool arguments (its inputSchema)' }))
}, { additionalProperties: false })
export type CallToolBody = Static<typeof CallToolBody>

export const ToolDefinition = Open({
  name: Type.String(),
  title: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  inputSchema: Type.Optional(Type.Unknown()),
  outputSchema: Type.Optional(Type.Unknown()),
  annotations: Type.Optional(Type.Unknown())
})

export const ToolsListReply = Type.Object({
  tools: Type.Array(ToolDefinition),
  nextCursor: Type.Optional(Type.String())
})

export const ResourceDefinition = Open({
  uri: Type.String(),
  name: Type.Optional(Type.String()),
  title: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  mimeType: Type.Optional(Type.String())
})

export const ResourcesListReply = Type.Object({
  resources: Type.Array(ResourceDefinition),
  nextCursor: Type.Optional(Type.String())
})

export const CallToolReply = Open({
  content: Type.Optional(Type.Array(Open({ type: Type.Optional(Type.String()) }))),
  structuredContent: Type.Optional(Type.Unknown()),
  isError: Type.Optional(Type.Boolean())
}, 'The tool result exactly as the upstream returned it (MCP CallToolResult)')

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String()
})
