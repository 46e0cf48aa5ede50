import { Value } from 'typebox/value'
import type { TSchema } from 'typebox'

/**
 * Turns JSON-schema failures into sentences that name the field, e.g.
 * `servers[0].transport: must be one of "streamable-http", "stdio"` or `mcpServers.github: unknown key "autoApprove"`.
 * Objects, arrays and maps are walked member by member so that every problem in a file is reported in one run
 * (a validator stops at the first failing branch of an object).
 */
export function schemaProblems (schema: TSchema, value: unknown, root = ''): string[] {
  const problems: string[] = []
  walk(schema as Schema, value, root, problems)
  if (problems.length === 0 && !Value.Check(schema, value)) problems.push(...leafProblems(schema, value, root))
  return problems
}

interface Schema {
  type?: string
  properties?: Record<string, Schema>
  required?: string[]
  patternProperties?: Record<string, Schema>
  additionalProperties?: boolean | Schema
  items?: Schema
}

function walk (schema: Schema, value: unknown, path: string, problems: string[]): void {
  if (schema.type === 'object' && isRecord(value)) {
    const properties = schema.properties ?? {}
    for (const key of schema.required ?? []) {
      if (!(key in value)) problems.push(`${path === '' ? '(root)' : path}: needs ${JSON.stringify(key)}`)
    }
    const patterns = Object.entries(schema.patternProperties ?? {}).map(([p, s]) => [new RegExp(p), s] as const)
    for (const [key, member] of Object.entries(value)) {
      const where = join(path, key)
      const known = properties[key] ?? patterns.find(([pattern]) => pattern.test(key))?.[1]
      if (known !== undefined) walk(known, member, where, problems)
      else if (schema.additionalProperties === false) problems.push(`${path === '' ? '(root)' : path}: unknown key ${JSON.stringify(key)}`)
    }
    return
  }
  if (schema.type === 'array' && Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items
    value.forEach((item, i) => walk(items, item, `${path}[${i}]`, problems))
    if (!Value.Check({ ...schema, items: {} } as TSchema, value)) problems.push(...leafProblems({ ...schema, items: {} } as TSchema, value, path))
    return
  }
  if (!Value.Check(schema as TSchema, value)) problems.push(...leafProblems(schema as TSchema, value, path))
}

function leafProblems (schema: TSchema, value: unknown, root: string): string[] {
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
  for (const raw of pointer.split('/').slice(1)) path = join(path, raw.replace(/~1/g, '/').replace(/~0/g, '~'))
  return path
}

function join (path: string, key: string): string {
  if (/^\d+$/.test(key)) return `${path}[${key}]`
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return path === '' ? key : `${path}.${key}`
  return `${path}[${JSON.stringify(key)}]`
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
