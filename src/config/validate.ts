import { Value } from 'typebox/value'
import type { TSchema } from 'typebox'

/**
 * Turns JSON-schema failures into sentences that name the field, e.g.
 * `servers[0].transport: must be one of "streamable-http", "stdio"` or `mcpServers.github: unknown key "autoApprove"`.
 */
export function schemaProblems (schema: TSchema, value: unknown, root = ''): string[] {
  const byPath = new Map<string, { consts: unknown[], messages: string[] }>()
  for (const error of Value.Errors(schema, value)) {
    if (error.keyword === 'boolean') continue // the additionalProperties entry on the parent names the key
    const path = fieldPath(root, error.instancePath)
    let entry = byPath.get(path)
    if (entry === undefined) {
      entry = { consts: [], messages: [] }
      byPath.set(path, entry)
    }
    const params = error.params as Record<string, unknown>
    if (error.keyword === 'const') entry.consts.push(params.allowedValue)
    else if (error.keyword === 'anyOf' && entry.consts.length > 0) continue
    else if (error.keyword === 'additionalProperties') {
      for (const key of params.additionalProperties as string[]) entry.messages.push(`unknown key ${JSON.stringify(key)}`)
    } else entry.messages.push(error.message)
  }
  const problems: string[] = []
  for (const [path, { consts, messages }] of byPath) {
    const where = path === '' ? '(root)' : path
    if (consts.length > 0) problems.push(`${where}: must be one of ${consts.map(c => JSON.stringify(c)).join(', ')}`)
    for (const message of messages) problems.push(`${where}: ${message}`)
  }
  return problems
}

/** `/servers/0/headers/x-key` → `servers[0].headers.x-key` */
export function fieldPath (root: string, pointer: string): string {
  let path = root
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^\d+$/.test(part)) path += `[${part}]`
    else if (/^[A-Za-z_$][\w$-]*$/.test(part)) path += path === '' ? part : '.' + part
    else path += `[${JSON.stringify(part)}]`
  }
  return path
}
