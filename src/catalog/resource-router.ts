import { SortedMap } from './sorted-map.js'
import { compileTemplate, type TemplateMatcher } from './uri-template.js'

const NEVER: TemplateMatcher = { test: () => false }

/**
 * Which service serves a URI that no service lists (servers create resources at run time that no list shows yet):
 * the one whose template matches it, the most specific template (longest literal start) first; else the one whose
 * listed URIs (or template starts) share the longest start with it, at least up to the scheme. Both lookups cost
 * a few map probes, not a scan of the catalog: the longest common start with a sorted set of strings is found at
 * the URI's two neighbours.
 */

/** Longer URIs, and templates, are not matched (a match costs the URI's length times the template's). */
const TEMPLATE_URI_LIMIT = 4096
const TEMPLATE_LIMIT = 1024

interface TemplateRoute {
  readonly template: string
  readonly service: string
  readonly matcher: TemplateMatcher
}

export class ResourceRouter {
  /** Listed URIs and template starts → the services behind them (with how many entries each). */
  readonly #prefixes = new SortedMap<string, Map<string, number>>()
  /** A template's literal start (the text before its first expression) → its routes, by template. */
  readonly #templates = new Map<string, TemplateRoute[]>()
  /** Lengths of the literal starts in use (with how many starts have each), and the same lengths longest first. */
  readonly #lengths = new Map<number, number>()
  #longestFirst: number[] = []

  /** A listed resource's owner changed. */
  resource (uri: string, owner: string | undefined, previous: string | undefined): void {
    if (previous !== undefined) this.#removePrefix(uri, previous)
    if (owner !== undefined) this.#addPrefix(uri, owner)
  }

  /** A template's owner changed. */
  template (template: string, owner: string | undefined, previous: string | undefined): void {
    const start = literalStart(template)
    if (previous !== undefined) {
      this.#removePrefix(start, previous)
      const routes = this.#templates.get(start) ?? []
      routes.splice(routes.findIndex(r => r.template === template), 1)
      if (routes.length === 0) {
        this.#templates.delete(start)
        this.#countLength(start.length, -1)
      }
    }
    if (owner !== undefined) {
      this.#addPrefix(start, owner)
      let routes = this.#templates.get(start)
      if (routes === undefined) {
        this.#templates.set(start, routes = [])
        this.#countLength(start.length, 1)
      }
      let at = routes.length
      while (at > 0 && template < (routes[at - 1] as TemplateRoute).template) at--
      routes.splice(at, 0, { template, service: owner, matcher: template.length > TEMPLATE_LIMIT ? NEVER : compileTemplate(template) })
    }
  }

  /** The service for a URI that no service lists, if any fits. */
  route (uri: string): string | undefined {
    for (const length of uri.length > TEMPLATE_URI_LIMIT ? [] : this.#longestFirst) {
      if (length > uri.length) continue
      for (const route of this.#templates.get(uri.slice(0, length)) ?? []) {
        if (route.matcher.test(uri)) return route.service
      }
    }
    const scheme = uri.indexOf(':')
    if (scheme === -1) return undefined
    const lower = this.#prefixes.getPairOrNextLower(uri)
    const higher = this.#prefixes.nextHigherPair(uri)
    const lowerLength = lower === undefined ? -1 : commonPrefixLength(lower[0], uri)
    const higherLength = higher === undefined ? -1 : commonPrefixLength(higher[0], uri)
    const best = higherLength > lowerLength ? higher : lower
    if (best === undefined || Math.max(lowerLength, higherLength) < scheme + 1) return undefined
    return firstService(best[1])
  }

  #addPrefix (prefix: string, service: string): void {
    let services = this.#prefixes.get(prefix)
    if (services === undefined) this.#prefixes.set(prefix, services = new Map())
    services.set(service, (services.get(service) ?? 0) + 1)
  }

  #removePrefix (prefix: string, service: string): void {
    const services = this.#prefixes.get(prefix)
    if (services === undefined) return
    const count = (services.get(service) ?? 1) - 1
    if (count > 0) services.set(service, count)
    else services.delete(service)
    if (services.size === 0) this.#prefixes.delete(prefix)
  }

  #countLength (length: number, delta: 1 | -1): void {
    const count = (this.#lengths.get(length) ?? 0) + delta
    if (count > 0) this.#lengths.set(length, count)
    else this.#lengths.delete(length)
    this.#longestFirst = [...this.#lengths.keys()].sort((a, b) => b - a)
  }
}

/** The text of a URI template before its first expression. */
export function literalStart (template: string): string {
  return template.split('{', 1)[0] as string
}

function commonPrefixLength (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++
  return i
}

/** The alphabetically first service, so the answer never depends on which listed first. */
function firstService (services: Map<string, number>): string {
  let first: string | undefined
  for (const service of services.keys()) if (first === undefined || service < first) first = service
  return first as string
}
