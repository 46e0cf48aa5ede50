import { Catalog, type CatalogSource } from './catalog.js'
import { notificationMessage } from './jsonrpc.js'
import type { Logger } from './logger.js'
import type { ListKind } from './mcp-types.js'
import type { NamingOptions } from './naming.js'

/**
 * The catalog as it changes: each service's contribution is set on its own (its listing when one of its replicas is
 * up, nothing when none is), and once a burst of changes is over the clients are told which lists changed.
 */

export interface LiveCatalogOptions {
  naming: NamingOptions
  log: Logger
  /** Sends a serialized notification to every initialized client. */
  broadcast: (message: string) => void
}

const LIST_CHANGED: Record<ListKind, string> = {
  tools: 'notifications/tools/list_changed',
  resources: 'notifications/resources/list_changed',
  prompts: 'notifications/prompts/list_changed'
}

export class LiveCatalog {
  readonly #sources = new Map<string, CatalogSource>()
  #snapshot: Catalog
  #dirty = false
  #announcing = false
  #announced: Record<ListKind, string>

  constructor (private readonly options: LiveCatalogOptions) {
    this.#snapshot = new Catalog([], options.naming)
    this.#announced = this.#snapshot.signatures
  }

  /** The merged catalog, rebuilt on first read after a service's contribution changed. */
  get current (): Catalog {
    if (this.#dirty) {
      this.#dirty = false
      this.#snapshot = new Catalog([...this.#sources.values()], this.options.naming)
      const collisions = this.#snapshot.collisions
      if (collisions.tools.length + collisions.prompts.length + collisions.resources.length > 0) {
        this.options.log.warn({ collisions }, 'name collisions in the catalog were resolved (see /status)')
      }
    }
    return this.#snapshot
  }

  /** What `service` contributes from now on; undefined: nothing (no replica is up, or it is gone). */
  set (service: string, source: CatalogSource | undefined): void {
    const held = this.#sources.get(service)
    if (held === source || (held !== undefined && source !== undefined && sameSource(held, source))) return
    if (source === undefined) this.#sources.delete(service)
    else this.#sources.set(service, source)
    this.#changed()
  }

  #changed (): void {
    this.#dirty = true
    if (this.#announcing) return
    this.#announcing = true
    setImmediate(() => {
      this.#announcing = false
      const signatures = this.current.signatures
      for (const kind of ['tools', 'resources', 'prompts'] as const) {
        if (signatures[kind] !== this.#announced[kind]) this.options.broadcast(JSON.stringify(notificationMessage(LIST_CHANGED[kind])))
      }
      this.#announced = signatures
    })
  }
}

function sameSource (a: CatalogSource, b: CatalogSource): boolean {
  return a.listing === b.listing && a.tools === b.tools && a.prompts === b.prompts
}
