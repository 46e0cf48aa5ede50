import { isDeepStrictEqual } from 'node:util'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ServerConfig } from '../schemas/config.js'
import { ConfigProblems, normalizeServer, serviceConflicts } from './config/normalize.js'
import type { UpstreamDefaults, UpstreamDefinition } from './config/types.js'
import { schemaProblems } from './config/validate.js'
import { ERR_CONFIG_INVALID, ERR_SERVER_EXISTS, ERR_SERVER_INVALID, ERR_SERVER_NOT_FOUND } from './errors.js'
import type { Logger } from './logger.js'

/**
 * The upstream definitions and the services they form. Changes made at run time (the admin API) are announced to
 * listeners and, when a registry file is configured, persisted as an overlay on the configuration: on the next
 * start the configured servers are read first, then the overlay adds, replaces or removes by id.
 */

export type RegistryChange =
  | { type: 'added', server: UpstreamDefinition }
  | { type: 'updated', server: UpstreamDefinition, previous: UpstreamDefinition }
  | { type: 'removed', server: UpstreamDefinition }

export interface ServiceOptions {
  sessionMode: UpstreamDefinition['sessionMode']
  tools: UpstreamDefinition['tools']
  prompts: UpstreamDefinition['prompts']
  /** undefined: the gateway's default balancing. */
  balancer: UpstreamDefinition['balancer']
  /** undefined: its results are not cached (unless a cache.tools entry says so). */
  cache: UpstreamDefinition['cache']
}

export interface RegistryOptions {
  defaults: UpstreamDefaults
  /** Where runtime changes are persisted; null keeps them in memory. */
  file: string | null
  log: Logger
}

/** Id → the definition as it was given (defaults are applied when it is loaded), or null for a removal. */
type Overlay = Record<string, Record<string, unknown> | null>

/**
 * Id → what an operator switched on a server without replacing it (the dashboard's enable, disable and drain): kept
 * apart from the definitions, so the file never holds a configured server's expanded secrets.
 */
export interface ServerSwitches {
  enabled?: boolean
  weight?: number
}

export class Registry {
  readonly #servers = new Map<string, UpstreamDefinition>()
  readonly #listeners = new Set<(change: RegistryChange) => void>()
  #replicas = new Map<string, UpstreamDefinition[]>()
  #overlay: Overlay = {}
  #switches: Record<string, ServerSwitches> = {}
  #writing: Promise<void> = Promise.resolve()

  constructor (servers: readonly UpstreamDefinition[], private readonly options: RegistryOptions) {
    for (const server of servers) this.#servers.set(server.id, server)
    this.#index()
  }

  /** Applies the persisted overlay, if the registry file exists. Call before anything listens. */
  async load (): Promise<void> {
    const file = this.options.file
    if (file === null) return
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    let overlay: Overlay
    let switches: Record<string, ServerSwitches>
    try {
      const parsed = JSON.parse(text) as { servers?: Overlay, switches?: Record<string, ServerSwitches> }
      overlay = parsed.servers ?? {}
      switches = parsed.switches ?? {}
    } catch (err) {
      throw new ERR_CONFIG_INVALID(` in the registry file ${file}: it is not valid JSON (${(err as Error).message}); ` +
        'fix or delete it (it holds only the changes made through the admin API)')
    }
    for (const [id, server] of Object.entries(overlay)) {
      if (server === null) this.#servers.delete(id)
      else this.#servers.set(id, this.#validate({ ...server, id }, `${file}: servers.${id}`))
    }
    for (const [id, change] of Object.entries(switches)) {
      const server = this.#servers.get(id)
      // A switch for a server that is gone is dropped: a new server of that id must not start drained or off.
      if (server === undefined) {
        delete switches[id]
        continue
      }
      const enabled = typeof change.enabled === 'boolean' ? change.enabled : undefined
      const weight = Number.isInteger(change.weight) && (change.weight as number) >= 0 && (change.weight as number) <= 1000 ? change.weight : undefined
      switches[id] = { ...(enabled !== undefined ? { enabled } : {}), ...(weight !== undefined ? { weight } : {}) }
      this.#servers.set(id, switched(server, switches[id]))
    }
    const conflicts = serviceConflicts(this.list())
    if (conflicts.length > 0) throw new ERR_CONFIG_INVALID(` in the registry file ${file}:\n  - ${conflicts.join('\n  - ')}`)
    this.#overlay = overlay
    this.#switches = switches
    this.#index()
  }

  list (): UpstreamDefinition[] {
    return [...this.#servers.values()]
  }

  /** How many upstreams are registered. */
  get size (): number {
    return this.#servers.size
  }

  get (id: string): UpstreamDefinition | undefined {
    return this.#servers.get(id)
  }

  /** Replicas of a service, in registration order. */
  replicas (service: string): readonly UpstreamDefinition[] {
    return this.#replicas.get(service) ?? []
  }

  services (): string[] {
    return [...this.#replicas.keys()]
  }

  serviceOptions (service: string): ServiceOptions {
    const replicas = this.replicas(service)
    return {
      sessionMode: replicas[0]?.sessionMode ?? 'auto',
      tools: replicas.find(r => r.tools !== undefined)?.tools,
      prompts: replicas.find(r => r.prompts !== undefined)?.prompts,
      balancer: replicas.find(r => r.balancer !== undefined)?.balancer,
      cache: replicas.find(r => r.cache !== undefined)?.cache
    }
  }

  /** Validates and adds a server given in the config file's `servers[]` shape. */
  add (input: unknown): UpstreamDefinition {
    const server = this.#validate(input, 'server')
    if (this.#servers.has(server.id)) throw new ERR_SERVER_EXISTS(server.id, server.id)
    this.#checkService(server)
    this.#servers.set(server.id, server)
    this.#changed({ type: 'added', server }, input as Record<string, unknown>)
    return server
  }

  update (id: string, input: unknown): UpstreamDefinition {
    const previous = this.#servers.get(id)
    if (previous === undefined) throw new ERR_SERVER_NOT_FOUND(id)
    const given = { ...(input as object), id }
    const server = this.#validate(given, 'server')
    this.#checkService(server)
    this.#servers.set(id, server)
    this.#changed({ type: 'updated', server, previous }, given)
    return server
  }

  /**
   * Switches a server on or off (`enabled`) or drains it (`weight: 0`) without replacing its definition: what the
   * dashboard's actions do; `weight: null` undoes a weight switch (back to the definition's own weight). Persisted
   * beside the overlay; a later replacement or removal drops it.
   */
  patch (id: string, change: { enabled?: boolean, weight?: number | null }): UpstreamDefinition {
    const previous = this.#servers.get(id)
    if (previous === undefined) throw new ERR_SERVER_NOT_FOUND(id)
    const switches: ServerSwitches = { ...this.#switches[id] }
    if (change.enabled !== undefined) switches.enabled = change.enabled
    if (change.weight === null) delete switches.weight
    else if (change.weight !== undefined) switches.weight = change.weight
    const server = switched(UNSWITCHED.get(previous) ?? previous, switches)
    this.#servers.set(id, server)
    this.#switches[id] = switches
    this.#index()
    this.#persist()
    for (const listener of this.#listeners) listener({ type: 'updated', server, previous })
    return server
  }

  remove (id: string): UpstreamDefinition {
    const server = this.#servers.get(id)
    if (server === undefined) throw new ERR_SERVER_NOT_FOUND(id)
    this.#servers.delete(id)
    this.#changed({ type: 'removed', server }, null)
    return server
  }

  onChange (listener: (change: RegistryChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Resolves once every change so far is on disk. */
  flush (): Promise<void> {
    return this.#writing
  }

  #validate (input: unknown, field: string): UpstreamDefinition {
    const problems = schemaProblems(ServerConfig, input, field)
    if (problems.length > 0) throw new ERR_SERVER_INVALID(problems.join('; '))
    try {
      return normalizeServer(input as ServerConfig, this.options.defaults, field)
    } catch (err) {
      if (err instanceof ConfigProblems) throw new ERR_SERVER_INVALID(err.problems.join('; '))
      throw err
    }
  }

  #checkService (server: UpstreamDefinition): void {
    const problems = serviceConflicts(this.list(), server)
    if (problems.length > 0) throw new ERR_SERVER_INVALID(problems.join('; '))
  }

  #changed (change: RegistryChange, given: Record<string, unknown> | null): void {
    this.#index()
    this.#overlay[change.server.id] = given
    delete this.#switches[change.server.id]
    this.#persist()
    for (const listener of this.#listeners) listener(change)
  }

  #index (): void {
    const replicas = new Map<string, UpstreamDefinition[]>()
    for (const server of this.#servers.values()) {
      const list = replicas.get(server.service)
      if (list === undefined) replicas.set(server.service, [server])
      else list.push(server)
    }
    this.#replicas = replicas
  }

  /** Writes the overlay atomically (temporary file, then rename), one write at a time. */
  #persist (): void {
    const file = this.options.file
    if (file === null) return
    const text = JSON.stringify({ servers: this.#overlay, switches: this.#switches }, null, 2) + '\n'
    this.#writing = this.#writing.then(async () => {
      await mkdir(dirname(file), { recursive: true })
      const temporary = `${file}.${process.pid}.tmp`
      await writeFile(temporary, text, { mode: 0o600 })
      await rename(temporary, file)
    }).catch((err: Error) => {
      this.options.log.error({ err, file }, 'could not persist the registry: runtime changes will be lost on restart')
    })
  }
}

/** `server` with `change` applied (definitions are frozen: a new one). */
/** A switched definition → the definition it was switched from (what `weight: null` goes back to). */
const UNSWITCHED = new WeakMap<UpstreamDefinition, UpstreamDefinition>()

function switched (server: UpstreamDefinition, change: ServerSwitches): UpstreamDefinition {
  const base = UNSWITCHED.get(server) ?? server
  const result = Object.freeze({ ...base, ...(change.enabled !== undefined ? { enabled: change.enabled } : {}), ...(change.weight !== undefined ? { weight: change.weight } : {}) })
  UNSWITCHED.set(result, base)
  return result
}

/** Whether two definitions of one upstream differ in their weight at most (a drain: its connection and queue stay). */
export function onlyWeightChanged (previous: UpstreamDefinition, next: UpstreamDefinition): boolean {
  return isDeepStrictEqual({ ...previous, weight: 0 }, { ...next, weight: 0 })
}
