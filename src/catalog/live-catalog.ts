import type { NameFilter } from '../../schemas/config.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { notificationMessage } from '../jsonrpc.js'
import type { Logger } from '../logger.js'
import type { ListKind, Prompt, Resource, ResourceTemplate, ServiceListing, Tool } from '../mcp-types.js'
import type { Collision, NamingOptions } from '../naming.js'
import { RawResult } from '../raw-result.js'
import { type NamedEntry, NamedIndex } from './named-index.js'
import { ResourceRouter } from './resource-router.js'
import { type UriCollision, type UriEntry, UriIndex } from './uri-index.js'

/**
 * The merged view of every service that is up — tools and prompts under their exposed names, resources and
 * templates under their own URIs — kept incrementally: each service's contribution is set on its own and costs in
 * proportion to its own entries. Lists are answered from it, one page at a time, as JSON built from each entry's
 * cached text; clients are told which lists changed once a burst of changes is over (and at least every
 * `maxNotifyDelay` while changes keep coming), and only when what they would see did change.
 */

export interface CatalogSource {
  service: string
  listing: ServiceListing
  tools?: NameFilter | undefined
  prompts?: NameFilter | undefined
}

export interface CatalogCollisions {
  tools: Collision[]
  prompts: Collision[]
  resources: UriCollision[]
}

export type ListName = 'tools' | 'resources' | 'resourceTemplates' | 'prompts'

export interface LiveCatalogOptions {
  naming: NamingOptions
  log: Logger
  /** Sends a serialized notification to every initialized client. */
  broadcast: (message: string) => void
  /** How long a burst of changes may pause before clients are told (ms). */
  notifyDelay?: number
  /** The longest clients wait to be told while changes keep coming (ms). */
  maxNotifyDelay?: number
}

export type { NamedEntry, UriEntry }

const LIST_CHANGED: Record<ListKind, string> = {
  tools: 'notifications/tools/list_changed',
  resources: 'notifications/resources/list_changed',
  prompts: 'notifications/prompts/list_changed'
}

/** Tools that can only be called as tasks: the gateway does not map task ids, so they cannot be called through it. */
const needsTasks = (tool: Tool) => (tool.execution as { taskSupport?: unknown } | undefined)?.taskSupport === 'required'

export class LiveCatalog {
  readonly #tools: NamedIndex<Tool>
  readonly #prompts: NamedIndex<Prompt>
  readonly #router = new ResourceRouter()
  readonly #resources = new UriIndex<Resource>(r => r.uri, (uri, owner, previous) => this.#router.resource(uri, owner?.service, previous?.service))
  readonly #templates = new UriIndex<ResourceTemplate>(t => t.uriTemplate, (key, owner, previous) => this.#router.template(key, owner?.service, previous?.service))
  readonly #sources = new Map<string, CatalogSource>()
  /** What clients were last told of, per kind. */
  #announced: Record<ListKind, string>
  /** What clients listed while changes waited to be announced: each must be compared with the outcome too. */
  readonly #listed: Record<ListKind, Set<string>> = { tools: new Set(), resources: new Set(), prompts: new Set() }
  #timer: NodeJS.Timeout | undefined
  #pendingSince = 0

  constructor (private readonly options: LiveCatalogOptions) {
    this.#tools = new NamedIndex<Tool>(options.naming, needsTasks)
    this.#prompts = new NamedIndex<Prompt>(options.naming)
    this.#announced = this.signatures
  }

  /** What `service` contributes from now on; undefined: nothing (no replica is up, or it is gone). */
  set (service: string, source: CatalogSource | undefined): void {
    const held = this.#sources.get(service)
    if (held === source) return
    const listing = source?.listing
    const before = held?.listing
    const same = (kind: ListKind, filters: boolean) => held !== undefined && source !== undefined &&
      before?.digests[kind] === listing?.digests[kind] && filters
    if (source === undefined) this.#sources.delete(service)
    else this.#sources.set(service, source)
    let collided = 0
    if (!same('tools', held?.tools === source?.tools)) {
      collided += this.#tools.replace(service, listing === undefined ? undefined : { items: listing.tools, filter: source?.tools, digest: listing.digests.tools })
      const hidden = listing?.tools.filter(needsTasks).length ?? 0
      if (hidden > 0) this.options.log.info({ service, hidden }, 'tools that can only be called as tasks are not listed (the gateway does not support tasks)')
    }
    if (!same('prompts', held?.prompts === source?.prompts)) {
      collided += this.#prompts.replace(service, listing === undefined ? undefined : { items: listing.prompts, filter: source?.prompts, digest: listing.digests.prompts })
    }
    if (!same('resources', true)) {
      this.#resources.replace(service, listing?.resources, listing?.digests.resources ?? '')
      this.#templates.replace(service, listing?.resourceTemplates, listing?.digests.resources ?? '')
    }
    if (collided > 0) this.options.log.warn({ service, collided }, 'name collisions in the catalog were resolved (see /status)')
    this.#changed()
  }

  tool (name: string): NamedEntry<Tool> | undefined {
    return this.#tools.get(name)
  }

  /** The name clients see for a service's tool, by the upstream's own name (a scan of that service's tools). */
  toolName (service: string, originalName: string): string | undefined {
    return this.#tools.nameOf(service, originalName)
  }

  prompt (name: string): NamedEntry<Prompt> | undefined {
    return this.#prompts.get(name)
  }

  template (uriTemplate: string): UriEntry<ResourceTemplate> | undefined {
    return this.#templates.owner(uriTemplate)
  }

  /**
   * The service that serves a URI: the one listing it, else the one whose template matches it, else the one whose
   * URIs it most resembles (see ResourceRouter).
   */
  resourceOwner (uri: string): string | undefined {
    return this.#resources.owner(uri)?.service ?? this.#router.route(uri)
  }

  /** Every tool clients see, in name order. */
  tools (): IterableIterator<NamedEntry<Tool>> {
    return this.#tools.all()
  }

  counts (): { tools: number, resources: number, resourceTemplates: number, prompts: number } {
    return { tools: this.#tools.size, resources: this.#resources.size, resourceTemplates: this.#templates.size, prompts: this.#prompts.size }
  }

  get collisions (): CatalogCollisions {
    return { tools: this.#tools.collisions(), prompts: this.#prompts.collisions(), resources: [...this.#resources.collisions(), ...this.#templates.collisions()] }
  }

  /** Equal signatures mean clients see the same list of that kind. */
  get signatures (): Record<ListKind, string> {
    return { tools: this.#tools.digest.value, resources: this.#resources.digest.value + '/' + this.#templates.digest.value, prompts: this.#prompts.digest.value }
  }

  /**
   * One page of a list as the JSON-RPC result, written from the entries' cached JSON, of the entries `visible` lets
   * through (by name, URI or URI template); throws MCPGW_ERR_INVALID_CURSOR for a cursor this list did not issue.
   */
  list (list: ListName, cursor: unknown, size: number, visible?: (name: string) => boolean): RawResult {
    const after = cursor === undefined ? undefined : decodeCursor(list, cursor)
    if (this.#timer !== undefined) {
      const kind: ListKind = list === 'resourceTemplates' ? 'resources' : list
      this.#listed[kind].add(this.signatures[kind])
    }
    const { entries, more } = list === 'tools'
      ? this.#tools.page(after, size, visible)
      : list === 'prompts'
        ? this.#prompts.page(after, size, visible)
        : list === 'resources' ? this.#resources.page(after, size, visible) : this.#templates.page(after, size, visible)
    let text = '{"' + list + '":['
    for (let i = 0; i < entries.length; i++) text += (i === 0 ? '' : ',') + (entries[i] as { json: string }).json
    text += ']'
    const last = entries.at(-1)
    if (more && last !== undefined) text += ',"nextCursor":' + JSON.stringify(encodeCursor(list, 'key' in last ? last.key : last.name))
    return RawResult.of(text + '}')
  }

  close (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #changed (): void {
    const now = Date.now()
    if (this.#timer === undefined) this.#pendingSince = now
    clearTimeout(this.#timer)
    const wait = Math.min(this.options.notifyDelay ?? 50, Math.max(0, this.#pendingSince + (this.options.maxNotifyDelay ?? 1000) - now))
    this.#timer = setTimeout(() => this.#announce(), wait)
    this.#timer.unref()
  }

  #announce (): void {
    this.#timer = undefined
    const signatures = this.signatures
    for (const kind of ['tools', 'resources', 'prompts'] as const) {
      const listed = this.#listed[kind]
      const changed = signatures[kind] !== this.#announced[kind] || [...listed].some(seen => seen !== signatures[kind])
      listed.clear()
      if (changed) this.options.broadcast(JSON.stringify(notificationMessage(LIST_CHANGED[kind])))
    }
    this.#announced = signatures
  }
}
