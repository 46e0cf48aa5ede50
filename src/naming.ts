import { createHash } from 'node:crypto'
import type { PrefixMode } from '../schemas/config.js'

/**
 * How upstream tool and prompt names become the names clients see; the catalog's NamedIndex applies these rules.
 * Names stay within `[A-Za-z0-9_-]` and 64 characters, because LLM APIs reject anything else (Anthropic:
 * `^[a-zA-Z0-9_-]{1,64}$`); a name that does not fit keeps a readable start and ends in a stable hash of what it
 * stands for.
 */

export const NAME_LIMIT = 64
const HASH_LENGTH = 8

export interface NamingOptions {
  prefixMode: PrefixMode
  separator: string
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

/** Who a name stands for: the service and the upstream's own name. */
export function nameIdentity (service: string, original: string): string {
  return service + '\0' + original
}

/**
 * The name an upstream tool or prompt asks for: its rename when configured (used as given, never prefixed), else
 * its own name, prefixed with the service when `prefixed`, fitted to the limits.
 */
export function candidateName (service: string, original: string, rename: string | undefined, prefixed: boolean, separator: string): string {
  if (rename !== undefined) return rename
  const identity = nameIdentity(service, original)
  return prefixed ? fitName(sanitizeName(service) + separator + original, identity) : fitName(original, identity)
}

/**
 * The name a later claimant of `candidate` gets instead (the first holder keeps it): a readable start and a hash of
 * what it stands for. `attempt` 2, 3, … are for the astronomically rare case where even that is taken.
 */
export function collisionName (candidate: string, identity: string, attempt = 1): string {
  return attempt === 1
    ? candidate.slice(0, NAME_LIMIT - HASH_LENGTH - 1) + '_' + shortHash(identity)
    : candidate.slice(0, NAME_LIMIT - HASH_LENGTH - 4) + '_' + shortHash(identity + attempt)
}

/**
 * Compiles allow/deny patterns where `*` matches any run of characters. Matching is linear-time wildcard matching
 * (no regular expression), so a pattern with many stars run against a long upstream name cannot stall the process.
 */
export function globMatcher (patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set<string>()
  const globs: string[][] = []
  for (const p of patterns) {
    if (!p.includes('*')) exact.add(p)
    else globs.push(p.split('*'))
  }
  return (name) => exact.has(name) || globs.some(parts => globMatches(parts, name))
}

/**
 * Whether `name` is the pattern's parts with any runs between them: the first part a prefix, the last a suffix, and
 * the ones between found in order, each at its first place (the greedy choice is always right for `*` alone).
 */
function globMatches (parts: readonly string[], name: string): boolean {
  const first = parts[0] as string
  const last = parts[parts.length - 1] as string
  if (name.length < first.length + last.length || !name.startsWith(first) || !name.endsWith(last)) return false
  let at = first.length
  const end = name.length - last.length
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] as string
    const found = name.indexOf(part, at)
    if (found === -1 || found + part.length > end) return false
    at = found + part.length
  }
  return true
}
