import { createHash } from 'node:crypto'
import type { Params } from '../../schemas/jsonrpc.js'
import { ERR_UPSTREAM_PROTOCOL } from '../errors.js'
import type { Logger } from '../logger.js'
import type { ListKind, ServiceListing } from '../mcp-types.js'
import { nextTurn, type UpstreamSession } from './session.js'

/**
 * What an upstream offers, read from it: every page of its tools, resources, templates and prompts (those its
 * capabilities declare), one list after the other, each kind with a digest that changes whenever its content does.
 * What it sends is bounded: pages, entries per kind, characters of the whole listing (the rest is ignored, and
 * logged); entries without the field they are named by are skipped.
 */

const MAX_PAGES = 1000
/** Entries of one kind taken from one upstream; the rest is ignored (and logged). */
const MAX_ENTRIES = 10_000
/** Characters of one upstream's listing, all kinds together: what an upstream may make the catalog hold. */
const MAX_LISTING_CHARS = 32 * 1024 * 1024
const ALL_KINDS: readonly ListKind[] = ['tools', 'resources', 'prompts']

export interface ListingOptions {
  upstream: string
  /** Deadline of each list request. */
  timeout: number
  log: Logger
}

/** Lists `kinds` (all by default) on `session`; kinds not listed are kept from `previous`. */
export async function listServer (session: UpstreamSession, options: ListingOptions, previous?: ServiceListing, kinds: readonly ListKind[] = ALL_KINDS): Promise<ServiceListing> {
  const init = session.initializeResult
  if (init === undefined) throw new ERR_UPSTREAM_PROTOCOL(options.upstream, 'listing before initialize')
  const caps = init.capabilities ?? {}
  const want = (kind: ListKind) => kinds.includes(kind) && caps[kind] !== undefined
  const budget = { left: MAX_LISTING_CHARS - keptSize(previous, kinds) }
  const keep = (items: unknown[] | undefined, kind: ListKind) => kinds.includes(kind) ? [] : items ?? []
  // One list after the other, not all at once: at a thousand upstreams, parallel lists would open four sockets
  // to each of them at start-up, to sit idle afterwards.
  const tools = want('tools') ? await drain(session, 'tools/list', 'tools', options, budget) : keep(previous?.tools, 'tools')
  const resources = want('resources') ? await drain(session, 'resources/list', 'resources', options, budget) : keep(previous?.resources, 'resources')
  const resourceTemplates = want('resources')
    ? await drain(session, 'resources/templates/list', 'resourceTemplates', options, budget)
    : keep(previous?.resourceTemplates, 'resources')
  const prompts = want('prompts') ? await drain(session, 'prompts/list', 'prompts', options, budget) : keep(previous?.prompts, 'prompts')
  return {
    tools: tools as ServiceListing['tools'],
    resources: resources as ServiceListing['resources'],
    resourceTemplates: resourceTemplates as ServiceListing['resourceTemplates'],
    prompts: prompts as ServiceListing['prompts'],
    digests: {
      tools: digest(tools),
      resources: digest([resources, resourceTemplates]),
      prompts: digest(prompts)
    },
    capabilities: caps,
    serverInfo: init.serverInfo,
    protocolVersion: init.protocolVersion
  }
}

/** Every page of one list. */
async function drain (session: UpstreamSession, method: string, key: string, options: ListingOptions, budget: { left: number }): Promise<unknown[]> {
  const items: unknown[] = []
  const identity = key === 'resources' ? 'uri' : key === 'resourceTemplates' ? 'uriTemplate' : 'name'
  let cursor: unknown
  for (let page = 0; page < MAX_PAGES; page++) {
    let result: Params
    try {
      result = await session.request(method, cursor === undefined ? undefined : { cursor }, { timeout: options.timeout }) as Params
    } catch (err) {
      // The server declared the capability but cannot list it: show nothing of that kind rather than nothing at all.
      if ((err as { rpcError?: unknown }).rpcError === undefined) throw err
      options.log.warn({ method, err: (err as Error).message }, 'upstream failed a list request; treating it as empty')
      return items
    }
    const list = result?.[key]
    if (!Array.isArray(list)) throw new ERR_UPSTREAM_PROTOCOL(options.upstream, `${method} answered without a ${key} array`)
    budget.left -= JSON.stringify(list).length
    if (budget.left < 0) {
      options.log.warn({ method, limit: MAX_LISTING_CHARS }, 'upstream listing is larger than the gateway keeps; the rest is ignored')
      return items
    }
    for (const item of list) {
      if (items.length >= MAX_ENTRIES) {
        options.log.warn({ method, limit: MAX_ENTRIES }, 'upstream lists too many entries; the rest is ignored')
        return items
      }
      if (item !== null && typeof item === 'object' && typeof (item as Record<string, unknown>)[identity] === 'string') items.push(item)
      else options.log.warn({ method, item: JSON.stringify(item)?.slice(0, 200) }, `upstream listed an entry without a ${identity}; skipped`)
    }
    cursor = result.nextCursor
    await nextTurn()
    if (typeof cursor !== 'string' || cursor === '') return items
  }
  options.log.warn({ method, pages: MAX_PAGES }, 'upstream list has too many pages; the rest is ignored')
  return items
}

/** Characters of the kinds a refresh keeps from the previous listing (they count against the budget too). */
function keptSize (previous: ServiceListing | undefined, kinds: readonly ListKind[]): number {
  if (previous === undefined) return 0
  let size = 0
  if (!kinds.includes('tools')) size += JSON.stringify(previous.tools).length
  if (!kinds.includes('resources')) size += JSON.stringify([previous.resources, previous.resourceTemplates]).length
  if (!kinds.includes('prompts')) size += JSON.stringify(previous.prompts).length
  return size
}

function digest (value: unknown): string {
  return createHash('sha1').update(JSON.stringify(value)).digest('base64')
}
