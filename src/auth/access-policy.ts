import type { Principal } from '../client-context.js'
import type { GrantSettings, RoleSettings } from '../config/types.js'
import { globMatcher } from '../naming.js'

/**
 * What a principal may see and use, from the roles it holds (`auth.roles`): per kind, allow and deny globs on the
 * names clients see (tool and prompt names, resource URIs and URI templates), deny winning within a role; a
 * principal gets the union of its roles. A kind a role does not mention grants nothing; a role no principal could
 * know grants nothing. Without roles configured (or without authentication), everyone sees everything. The same
 * Access answers the lists (filtered before they are paged) and the calls (a hidden name is an unknown name), so
 * the two can never disagree.
 */

export type ItemKind = 'tools' | 'resources' | 'prompts'

export interface Access {
  /** Everything is visible: callers skip filtering altogether. */
  readonly unrestricted: boolean
  readonly admin: boolean
  sees (kind: ItemKind, name: string): boolean
}

export const UNRESTRICTED: Access = Object.freeze({ unrestricted: true, admin: false, sees: () => true })
const NOTHING: Access = Object.freeze({ unrestricted: false, admin: false, sees: () => false })

type Check = (name: string) => boolean

interface CompiledRole {
  readonly admin: boolean
  readonly grants: Readonly<Record<ItemKind, Check>>
}

/** Distinct role sets are few (one per kind of caller), so each gets its Access once and keeps it. */
const MAX_CACHED_ROLE_SETS = 1000

export class AccessPolicy {
  readonly #roles: ReadonlyMap<string, CompiledRole> | undefined
  readonly #byRoleSet = new Map<string, Access>()

  constructor (roles: Readonly<Record<string, RoleSettings>> | null) {
    if (roles === null) return
    this.#roles = new Map(Object.entries(roles).map(([name, role]) => [name, {
      admin: role.admin,
      grants: { tools: compile(role.tools), resources: compile(role.resources), prompts: compile(role.prompts) }
    }]))
  }

  /** Whether any role may use the admin API (the admin routes then exist even without the admin key). */
  get grantsAdmin (): boolean {
    return [...this.#roles?.values() ?? []].some(role => role.admin)
  }

  for (principal: Principal | null): Access {
    if (this.#roles === undefined || principal === null) return UNRESTRICTED
    const key = JSON.stringify(principal.roles)
    let access = this.#byRoleSet.get(key)
    if (access === undefined) {
      access = this.#compose(principal.roles)
      if (this.#byRoleSet.size >= MAX_CACHED_ROLE_SETS) this.#byRoleSet.clear()
      this.#byRoleSet.set(key, access)
    }
    return access
  }

  #compose (names: readonly string[]): Access {
    const roles = names.map(name => this.#roles?.get(name)).filter((role): role is CompiledRole => role !== undefined)
    if (roles.length === 0) return NOTHING
    const admin = roles.some(role => role.admin)
    if (roles.length === 1) {
      const grants = (roles[0] as CompiledRole).grants
      return { unrestricted: false, admin, sees: (kind, name) => grants[kind](name) }
    }
    return { unrestricted: false, admin, sees: (kind, name) => roles.some(role => role.grants[kind](name)) }
  }
}

function compile (grant: GrantSettings): Check {
  if (grant.allow.length === 0) return () => false
  const allowed = globMatcher(grant.allow)
  if (grant.deny.length === 0) return allowed
  const denied = globMatcher(grant.deny)
  return (name) => allowed(name) && !denied(name)
}
