import type { NameFilter } from '../schemas/config.js'
import type { ListKind, Prompt, Resource, ResourceTemplate, ServiceListing, Tool } from './mcp-types.js'
import { assignNames, type Collision, globMatcher, type NamingOptions } from './naming.js'

/**
 * The merged view of every service that is up: tools and prompts under their exposed names, resources and templates
 * under their own URIs (the first service in alphabetical order owns a URI two services share). A catalog is an
 * immutable snapshot; the proxy builds a new one when a service's listing changes, so readers never see a
 * half-merged state and lists are answered without touching an upstream.
 */

export interface CatalogSource {
  service: string
  listing: ServiceListing
  tools?: NameFilter | undefined
  prompts?: NameFilter | undefined
}

export interface NamedEntry<T> {
  /** Exposed name. */
  name: string
  service: string
  originalName: string
  /** What clients are shown: the upstream's definition with the exposed name (and description override). */
  definition: T
}

export interface UriEntry<T> {
  key: string
  service: string
  definition: T
}

export interface UriCollision {
  uri: string
  kept: string
  dropped: string
}

export interface CatalogCollisions {
  tools: Collision[]
  prompts: Collision[]
  resources: UriCollision[]
}

interface TemplateRoute {
  service: string
  literalPrefix: string
  pattern: RegExp
}

const byName = (a: { name: string }, b: { name: string }) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0
const byKey = (a: { key: string }, b: { key: string }) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0

export class Catalog {
  readonly tools: readonly NamedEntry<Tool>[]
  readonly prompts: readonly NamedEntry<Prompt>[]
  readonly resources: readonly UriEntry<Resource>[]
  readonly templates: readonly UriEntry<ResourceTemplate>[]
  readonly collisions: CatalogCollisions
  /** Equal signatures mean clients see the same list of that kind. */
  readonly signatures: Record<ListKind, string>
  /** The services that contribute anything clients see. */
  readonly services: ReadonlySet<string>
  readonly #tools: Map<string, NamedEntry<Tool>>
  readonly #prompts: Map<string, NamedEntry<Prompt>>
  readonly #resources: Map<string, UriEntry<Resource>>
  readonly #templates: Map<string, UriEntry<ResourceTemplate>>
  readonly #templateRoutes: TemplateRoute[]
  readonly #prefixes: Array<[prefix: string, service: string]>

  constructor (sources: readonly CatalogSource[], naming: NamingOptions) {
    const ordered = [...sources].sort((a, b) => a.service < b.service ? -1 : a.service > b.service ? 1 : 0)
    const tools = mergeNamed(ordered, 'tools', naming)
    const prompts = mergeNamed(ordered, 'prompts', naming)
    this.tools = tools.entries
    this.prompts = prompts.entries
    this.#tools = new Map(tools.entries.map(e => [e.name, e]))
    this.#prompts = new Map(prompts.entries.map(e => [e.name, e]))

    const resourceCollisions: UriCollision[] = []
    this.#resources = mergeUris(ordered, s => s.listing.resources, r => r.uri, resourceCollisions)
    this.#templates = mergeUris(ordered, s => s.listing.resourceTemplates, t => t.uriTemplate, resourceCollisions)
    this.resources = [...this.#resources.values()].sort(byKey)
    this.templates = [...this.#templates.values()].sort(byKey)
    this.#templateRoutes = this.templates.map(t => ({
      service: t.service,
      literalPrefix: t.key.split('{', 1)[0] as string,
      pattern: templatePattern(t.key)
    })).sort((a, b) => b.literalPrefix.length - a.literalPrefix.length)
    this.#prefixes = [
      ...this.resources.map(r => [r.key, r.service] as [string, string]),
      ...this.#templateRoutes.map(t => [t.literalPrefix, t.service] as [string, string])
    ]
    this.collisions = { tools: tools.collisions, prompts: prompts.collisions, resources: resourceCollisions }

    // What clients see of a kind follows from the listings and filters of the services that contribute to it, and
    // the naming options: a service that adds nothing of a kind does not change that kind's signature.
    const contributing = {
      tools: new Set(tools.entries.map(e => e.service)),
      prompts: new Set(prompts.entries.map(e => e.service)),
      resources: new Set([...this.resources, ...this.templates].map(e => e.service))
    }
    const signature = (kind: ListKind) => naming.prefixMode + naming.separator + '|' + ordered
      .filter(s => contributing[kind].has(s.service))
      .map(s => s.service + ':' + s.listing.digests[kind] + ':' + canonicalJson(kind === 'tools' ? s.tools : kind === 'prompts' ? s.prompts : null))
      .join('|')
    this.signatures = { tools: signature('tools'), resources: signature('resources'), prompts: signature('prompts') }
    this.services = new Set([...contributing.tools, ...contributing.prompts, ...contributing.resources])
  }

  tool (name: string): NamedEntry<Tool> | undefined {
    return this.#tools.get(name)
  }

  prompt (name: string): NamedEntry<Prompt> | undefined {
    return this.#prompts.get(name)
  }

  template (uriTemplate: string): UriEntry<ResourceTemplate> | undefined {
    return this.#templates.get(uriTemplate)
  }

  /**
   * The service that serves a URI: the one listing it, else the one whose template matches it (the most specific
   * first), else the one whose listed URIs share the longest start with it, at least up to the scheme (servers
   * create resources at run time that no list shows yet).
   */
  resourceOwner (uri: string): string | undefined {
    const listed = this.#resources.get(uri)
    if (listed !== undefined) return listed.service
    for (const route of this.#templateRoutes) {
      if (uri.startsWith(route.literalPrefix) && route.pattern.test(uri)) return route.service
    }
    const scheme = uri.indexOf(':')
    if (scheme === -1) return undefined
    let best: string | undefined
    let bestLength = scheme + 1
    for (const [prefix, service] of this.#prefixes) {
      const length = commonPrefixLength(prefix, uri)
      if (length > bestLength || (length === bestLength && best === undefined)) {
        best = service
        bestLength = length
      }
    }
    return best
  }
}

function mergeNamed<K extends 'tools' | 'prompts'> (sources: readonly CatalogSource[], kind: K, naming: NamingOptions) {
  type Item = K extends 'tools' ? Tool : Prompt
  const items: Array<{ service: string, item: Item, filter: NameFilter | undefined }> = []
  for (const source of sources) {
    const filter = source[kind]
    const allow = filter?.allow !== undefined ? globMatcher(filter.allow) : undefined
    const deny = filter?.deny !== undefined ? globMatcher(filter.deny) : undefined
    for (const item of source.listing[kind] as Item[]) {
      if (allow !== undefined && !allow(item.name)) continue
      if (deny?.(item.name) === true) continue
      items.push({ service: source.service, item, filter })
    }
  }
  const { names, collisions } = assignNames(items.map(({ service, item, filter }) => {
    const rename = filter?.rename?.[item.name]
    return rename === undefined ? { service, original: item.name } : { service, original: item.name, rename }
  }), naming)
  const entries = items.map(({ service, item, filter }, i): NamedEntry<Item> => {
    const name = names[i] as string
    const description = filter?.descriptions?.[item.name]
    const definition = { ...item, name, ...(description !== undefined ? { description } : {}) }
    return { name, service, originalName: item.name, definition }
  })
  return { entries: entries.sort(byName), collisions }
}

function mergeUris<T> (sources: readonly CatalogSource[], pick: (s: CatalogSource) => T[], keyOf: (t: T) => string, collisions: UriCollision[]) {
  const merged = new Map<string, UriEntry<T>>()
  for (const source of sources) {
    for (const definition of pick(source)) {
      const key = keyOf(definition)
      const held = merged.get(key)
      if (held === undefined) merged.set(key, { key, service: source.service, definition })
      else if (held.service !== source.service) collisions.push({ uri: key, kept: held.service, dropped: source.service })
    }
  }
  return merged
}

/** An RFC 6570 URI template as a matcher, precise enough to route by. */
export function templatePattern (template: string): RegExp {
  let source = '^'
  let last = 0
  for (const match of template.matchAll(/\{([+#./;?&]?)([^}]*)\}/g)) {
    source += escapeRegExp(template.slice(last, match.index))
    switch (match[1]) {
      case '+': case '#': source += '.*'; break
      case '?': case '&': source += '(?:[?&].*)?'; break
      case '/': source += '(?:/[^/?#]*)*'; break
      case '.': source += '(?:\\.[^/?#.]*)*'; break
      case ';': source += '(?:;[^/?#]*)*'; break
      default: source += '[^/?#]*'
    }
    last = (match.index as number) + match[0].length
  }
  return new RegExp(source + escapeRegExp(template.slice(last)) + '$')
}

/** JSON with object keys sorted, so equal settings written in another order compare equal. */
function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']'
  if (value !== null && typeof value === 'object') {
    return '{' + Object.keys(value).sort().map(k => JSON.stringify(k) + ':' + canonicalJson((value as Record<string, unknown>)[k])).join(',') + '}'
  }
  return JSON.stringify(value) ?? 'null'
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function commonPrefixLength (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++
  return i
}
