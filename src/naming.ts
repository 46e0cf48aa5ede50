import { createHash } from 'node:crypto'
import type { PrefixMode } from '../schemas/config.js'

/**
 * How upstream tool and prompt names become the names clients see. Names stay within `[A-Za-z0-9_-]` and 64
 * characters, because LLM APIs reject anything else (Anthropic: `^[a-zA-Z0-9_-]{1,64}$`); a name that does not fit
 * keeps a readable start and ends in a stable hash of what it stands for.
 */

export const NAME_LIMIT = 64
const HASH_LENGTH = 8

export interface NamingOptions {
  prefixMode: PrefixMode
  separator: string
}

export interface NameRequest {
  service: string
  /** The upstream's own name. */
  original: string
  /** An exact name set by configuration (`rename`); used as given, never prefixed. */
  rename?: string
}

export interface Collision {
  name: string
  kept: { service: string, original: string }
  renamed: { service: string, original: string, name: string }
}

export function shortHash (text: string, length = HASH_LENGTH): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length)
}

export function sanitizeName (name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_')
}

/** Fits a name in NAME_LIMIT characters; `identity` makes the hash suffix stable and distinct. */
export function fitName (name: string, identity: string): string {
  const clean = sanitizeName(name)
  if (clean.length > 0 && clean.length <= NAME_LIMIT) return clean
  return clean.slice(0, NAME_LIMIT - HASH_LENGTH - 1) + '_' + shortHash(identity)
}

/**
 * Assigns every request its exposed name, in the order given (the catalog passes services alphabetically, then
 * each upstream's own order). The first holder of a name keeps it; a later one gets a hashed suffix and is
 * reported as a collision, so nothing disappears and the outcome never depends on timing.
 */
export function assignNames (requests: readonly NameRequest[], options: NamingOptions): { names: string[], collisions: Collision[] } {
  let shared: Set<string> | undefined
  if (options.prefixMode === 'conditional') {
    const owners = new Map<string, string>()
    shared = new Set()
    for (const r of requests) {
      if (r.rename !== undefined) continue
      const owner = owners.get(r.original)
      if (owner === undefined) owners.set(r.original, r.service)
      else if (owner !== r.service) shared.add(r.original)
    }
  }
  const taken = new Map<string, NameRequest>()
  const names: string[] = []
  const collisions: Collision[] = []
  for (const r of requests) {
    const identity = r.service + '\0' + r.original
    let candidate: string
    if (r.rename !== undefined) candidate = r.rename
    else if (options.prefixMode === 'always' || shared?.has(r.original) === true) {
      candidate = fitName(sanitizeName(r.service) + options.separator + r.original, identity)
    } else candidate = fitName(r.original, identity)
    let name = candidate
    const holder = taken.get(name)
    if (holder !== undefined) {
      name = candidate.slice(0, NAME_LIMIT - HASH_LENGTH - 1) + '_' + shortHash(identity)
      for (let n = 2; taken.has(name); n++) name = candidate.slice(0, NAME_LIMIT - HASH_LENGTH - 4) + '_' + shortHash(identity + n)
      collisions.push({
        name: candidate,
        kept: { service: holder.service, original: holder.original },
        renamed: { service: r.service, original: r.original, name }
      })
    }
    taken.set(name, r)
    names.push(name)
  }
  return { names, collisions }
}

/** Compiles allow/deny patterns where `*` matches any run of characters. */
export function globMatcher (patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set<string>()
  const regexes: RegExp[] = []
  for (const p of patterns) {
    if (!p.includes('*')) exact.add(p)
    else regexes.push(new RegExp('^' + p.split('*').map(s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$'))
  }
  return (name) => exact.has(name) || regexes.some(r => r.test(name))
}
