import { test } from 'tap'
import { type CatalogSource, LiveCatalog, type ListName } from '../../../src/catalog/live-catalog.js'
import { compileTemplate } from '../../../src/catalog/uri-template.js'
import { silentLogger } from '../../../src/logger.js'
import type { Prompt, Resource, ResourceTemplate, ServiceListing, Tool } from '../../../src/mcp-types.js'
import { NAME_LIMIT, type NamingOptions, shortHash } from '../../../src/naming.js'

const always = { prefixMode: 'always', separator: '__' } as const
const conditional = { prefixMode: 'conditional', separator: '__' } as const
const never = { prefixMode: 'never', separator: '__' } as const
const VALID = /^[A-Za-z0-9_-]{1,64}$/

interface ListingParts {
  tools?: Array<string | Tool>
  prompts?: string[]
  resources?: string[]
  templates?: string[]
  digests?: Partial<ServiceListing['digests']>
}

const tool = (name: string): Tool => ({ name, description: `upstream ${name}`, inputSchema: { type: 'object' } })
const prompt = (name: string): Prompt => ({ name, description: `prompt ${name}` })
const resource = (uri: string): Resource => ({ uri, name: uri })
const template = (uriTemplate: string): ResourceTemplate => ({ uriTemplate, name: uriTemplate })

function listing ({ tools = [], prompts = [], resources = [], templates = [], digests = {} }: ListingParts = {}): ServiceListing {
  return {
    tools: tools.map(t => typeof t === 'string' ? tool(t) : t),
    prompts: prompts.map(prompt),
    resources: resources.map(resource),
    resourceTemplates: templates.map(template),
    // By default a digest follows the content, as the connection's does.
    digests: {
      tools: JSON.stringify(tools),
      resources: JSON.stringify([resources, templates]),
      prompts: JSON.stringify(prompts),
      ...digests
    },
    capabilities: { tools: {} },
    serverInfo: { name: 'test', version: '1.0.0' },
    protocolVersion: '2025-06-18'
  }
}

const source = (service: string, parts: ListingParts = {}, filters: Omit<CatalogSource, 'service' | 'listing'> = {}): CatalogSource =>
  ({ service, listing: listing(parts), ...filters })

function build (sources: CatalogSource[], naming: NamingOptions, options: { notifyDelay?: number } = {}) {
  const sent: string[] = []
  const catalog = new LiveCatalog({ naming, log: silentLogger, broadcast: (m) => sent.push(m), ...options })
  for (const s of sources) catalog.set(s.service, s)
  return { catalog, sent }
}

const catalogOf = (sources: CatalogSource[], naming: NamingOptions) => build(sources, naming).catalog

/** Everything a list shows, as clients read it (one page of everything). */
function listed (catalog: LiveCatalog, list: ListName): Array<Record<string, unknown>> {
  return (catalog.list(list, undefined, 1e9).value as Record<string, Array<Record<string, unknown>>>)[list] as Array<Record<string, unknown>>
}

const names = (catalog: LiveCatalog, list: 'tools' | 'prompts') => listed(catalog, list).map(e => e.name)

test('an empty catalog has nothing and routes nothing', async (t) => {
  const catalog = catalogOf([], always)
  t.same(catalog.counts(), { tools: 0, resources: 0, resourceTemplates: 0, prompts: 0 })
  t.same(listed(catalog, 'tools'), [])
  t.same(catalog.collisions, { tools: [], prompts: [], resources: [] })
  t.equal(catalog.resourceOwner('file:///x'), undefined)
  t.equal(catalog.tool('x'), undefined)
})

test('tools and prompts of several services are merged under prefixed names, sorted by name', async (t) => {
  const catalog = catalogOf([
    source('github', { tools: ['search', 'create_issue'], prompts: ['review'] }),
    source('fs', { tools: ['read_file'] })
  ], always)
  t.same(names(catalog, 'tools'), ['fs__read_file', 'github__create_issue', 'github__search'])
  t.same(names(catalog, 'prompts'), ['github__review'])
  const entry = catalog.tool('github__search')
  t.match(entry, {
    name: 'github__search',
    service: 'github',
    originalName: 'search',
    definition: { name: 'github__search', description: 'upstream search', inputSchema: { type: 'object' } }
  })
  t.equal(catalog.tool('search'), undefined, 'only exposed names are looked up')
  t.equal(catalog.prompt('github__review')?.originalName, 'review')
  t.equal(catalog.prompt('review'), undefined)
})

test('the upstream definition is not modified and unknown fields are carried through', async (t) => {
  const upstream: Tool = { name: 'x', inputSchema: { type: 'object' }, title: 'X', annotations: { readOnlyHint: true } }
  const catalog = catalogOf([source('s', { tools: [upstream] })], always)
  t.same(catalog.tool('s__x')?.definition, { name: 's__x', inputSchema: { type: 'object' }, title: 'X', annotations: { readOnlyHint: true } })
  t.same(listed(catalog, 'tools'), [{ name: 's__x', inputSchema: { type: 'object' }, title: 'X', annotations: { readOnlyHint: true } }])
  t.equal(upstream.name, 'x', 'the listing keeps its own name')
})

test('a tool that can only be called as a task is not listed: the gateway cannot call it', async (t) => {
  const catalog = catalogOf([source('s', {
    tools: [{ ...tool('must'), execution: { taskSupport: 'required' } }, { ...tool('may'), execution: { taskSupport: 'optional' } }, tool('plain')]
  })], always)
  t.same(names(catalog, 'tools'), ['s__may', 's__plain'])
  t.equal(catalog.tool('s__must'), undefined)
})

test('services are ordered alphabetically whatever the order they arrive in, so the first one keeps a shared name', async (t) => {
  const a = source('alpha', { tools: ['search'], prompts: ['hello'] })
  const b = source('beta', { tools: ['search'], prompts: ['hello'] })
  for (const sources of [[a, b], [b, a]]) {
    const catalog = catalogOf(sources, never)
    t.equal(catalog.tool('search')?.service, 'alpha')
    const renamed = 'search_' + shortHash('beta\0search')
    t.equal(catalog.tool(renamed)?.service, 'beta')
    t.equal(catalog.tool(renamed)?.definition.name, renamed)
    t.same(catalog.collisions.tools, [{
      name: 'search',
      kept: { service: 'alpha', original: 'search' },
      renamed: { service: 'beta', original: 'search', name: renamed }
    }])
    t.equal(catalog.collisions.prompts.length, 1)
    t.equal(catalog.collisions.prompts[0]?.kept.service, 'alpha')
    t.equal(catalog.counts().prompts, 2, 'nothing is dropped')
  }
})

test('naming: "always" prefixes every name with the sanitized service and the separator', async (t) => {
  t.same(names(catalogOf([source('github', { tools: ['search'] }), source('my.fs', { tools: ['read.file'] })], always), 'tools'),
    ['github__search', 'my_fs__read_file'])
  t.same(names(catalogOf([source('github', { tools: ['search'] })], { prefixMode: 'always', separator: '-' }), 'tools'), ['github-search'])
})

test('naming: "never" uses the upstream names as they are', async (t) => {
  const catalog = catalogOf([source('github', { tools: ['search'] }), source('fs', { tools: ['read'] })], never)
  t.same(names(catalog, 'tools'), ['read', 'search'])
  t.same(catalog.collisions.tools, [])
})

test('naming: "conditional" prefixes only names that several services share, and follows them as services come and go', async (t) => {
  const { catalog } = build([source('a', { tools: ['search', 'only_a'] }), source('b', { tools: ['search', 'only_b'] })], conditional)
  t.same(names(catalog, 'tools'), ['a__search', 'b__search', 'only_a', 'only_b'])
  t.same(catalog.collisions.tools, [])
  catalog.set('b', undefined)
  t.same(names(catalog, 'tools'), ['only_a', 'search'], 'once b is gone, a\'s search is no longer shared')
  catalog.set('c', source('c', { tools: ['search'] }))
  t.same(names(catalog, 'tools'), ['a__search', 'c__search', 'only_a'])
})

test('naming: "conditional" does not prefix a name one service lists twice; the second gets a hashed name', async (t) => {
  const catalog = catalogOf([source('a', { tools: ['dup', 'dup'] })], conditional)
  t.same(names(catalog, 'tools').sort(), ['dup', 'dup_' + shortHash('a\0dup')].sort())
  t.equal(catalog.collisions.tools.length, 1)
})

test('naming: a rename is used verbatim and never prefixed; it does not make its upstream name shared', async (t) => {
  for (const options of [always, conditional, never]) {
    const catalog = catalogOf([
      source('github', { tools: ['search_issues'] }, { tools: { rename: { search_issues: 'find_issues' } } }),
      source('jira', { tools: ['search_issues'] })
    ], options)
    t.ok(catalog.tool('find_issues') !== undefined, options.prefixMode)
  }
  const catalog = catalogOf([
    source('github', { tools: ['search_issues'] }, { tools: { rename: { search_issues: 'find_issues' } } }),
    source('jira', { tools: ['search_issues'] })
  ], conditional)
  t.equal(catalog.tool('search_issues')?.service, 'jira', 'a renamed tool does not make its original name shared in conditional mode')
})

test('naming: too long names end in a stable hash and fit in 64 characters', async (t) => {
  const service = 'a-very-long-service-name-for-testing'
  const original = 'an_equally_long_tool_name_that_goes_on_and_on'
  const [first] = names(catalogOf([source(service, { tools: [original] })], always), 'tools') as string[]
  t.equal(first?.length, NAME_LIMIT)
  t.match(first, VALID)
  t.equal(first, (service + '__' + original).slice(0, 55) + '_' + shortHash(service + '\0' + original))
  const [other] = names(catalogOf([source(service, { tools: [original + '_x'] })], always), 'tools') as string[]
  t.not(other, first, 'names differing past the cut still differ')
  const alike = catalogOf([source('alpha', { tools: ['t'.repeat(80)] }), source('beta', { tools: ['t'.repeat(80)] })], never)
  t.equal(new Set(names(alike, 'tools')).size, 2)
  t.same(alike.collisions.tools, [], 'the identity hash keeps them apart without a collision')
})

test('naming: names that only collide after sanitizing collide; a rename that takes a name collides; nothing is dropped', async (t) => {
  const sanitized = catalogOf([source('a', { tools: ['read.file'] }), source('b', { tools: ['read_file'] })], never)
  t.equal(sanitized.tool('read_file')?.service, 'a')
  t.equal(sanitized.tool('read_file_' + shortHash('b\0read_file'))?.service, 'b')
  t.same(sanitized.collisions.tools[0]?.kept, { service: 'a', original: 'read.file' })
  const rename = catalogOf([source('a', { tools: ['search'] }), source('b', { tools: ['lookup'] }, { tools: { rename: { lookup: 'search' } } })], never)
  t.equal(rename.counts().tools, 2)
  t.same(rename.collisions.tools, [{ name: 'search', kept: { service: 'a', original: 'search' }, renamed: { service: 'b', original: 'lookup', name: 'search_' + shortHash('b\0lookup') } }])
})

test('naming: a name taken by a hashed fallback goes to the candidate that asked for it; the fallback hashes again', async (t) => {
  const fallback = 'x_' + shortHash('c\0x')
  const services = [
    source('a', { tools: ['x'] }),
    source('b', { tools: ['x'] }),
    source('c', { tools: ['x'] }),
    source('d', { tools: ['y'] }, { tools: { rename: { y: fallback } } })
  ]
  for (const order of [services, [...services].reverse()]) {
    const catalog = catalogOf(order, never)
    t.equal(catalog.tool(fallback)?.service, 'd', 'the rename holds the name')
    t.equal(catalog.tool('x_' + shortHash('c\0x2'))?.service, 'c', 'c takes a second hash')
    t.equal(catalog.counts().tools, 4)
    for (const name of names(catalog, 'tools')) t.match(name, VALID)
  }
})

test('tools allow and deny filters use globs, deny wins; filters apply to their own kind and service only', async (t) => {
  t.same(names(catalogOf([source('git', { tools: ['git_status', 'git_push', 'git_log', 'clone'] }, { tools: { allow: ['git_*'], deny: ['git_push'] } })], never), 'tools'),
    ['git_log', 'git_status'])
  const deny = catalogOf([source('s', { tools: ['a', 'b', 'c'], prompts: ['a', 'b'] }, { tools: { deny: ['b'] }, prompts: { deny: ['*'] } })], never)
  t.same(names(deny, 'tools'), ['a', 'c'])
  t.same(names(deny, 'prompts'), [])
  t.same(names(catalogOf([source('s', { tools: ['a', 'b'] }, { tools: { allow: [] } })], never), 'tools'), [], 'an empty allow list exposes nothing')
  const scoped = catalogOf([source('a', { tools: ['x'], prompts: ['x'] }, { tools: { deny: ['x'] } }), source('b', { tools: ['x'], prompts: ['x'] })], always)
  t.same(names(scoped, 'tools'), ['b__x'])
  t.same(names(scoped, 'prompts'), ['a__x', 'b__x'])
  t.same(names(catalogOf([source('s', { tools: ['a', 'b'] }, { tools: { allow: ['a'], rename: { a: 'renamed_a', b: 'renamed_b' } } })], always), 'tools'),
    ['renamed_a'], 'allow and deny match upstream names, not renamed ones')
})

test('rename sets the exposed name verbatim and descriptions override the upstream text', async (t) => {
  const catalog = catalogOf([
    source('github', { tools: ['search_issues', 'other'], prompts: ['review'] }, {
      tools: { rename: { search_issues: 'find_issues' }, descriptions: { search_issues: 'Find GitHub issues' } },
      prompts: { rename: { review: 'code_review' }, descriptions: { review: 'Review a diff' } }
    })
  ], always)
  t.same(names(catalog, 'tools'), ['find_issues', 'github__other'])
  const renamed = catalog.tool('find_issues')
  t.equal(renamed?.originalName, 'search_issues')
  t.equal(renamed?.definition.description, 'Find GitHub issues')
  t.equal(catalog.tool('github__other')?.definition.description, 'upstream other', 'others keep their description')
  t.equal(catalog.prompt('code_review')?.definition.description, 'Review a diff')
})

test('resources keep their URIs and a URI two services list belongs to the first alphabetically', async (t) => {
  const catalog = catalogOf([
    source('zeta', { resources: ['file:///shared', 'file:///z'], templates: ['mem://{key}'] }),
    source('alpha', { resources: ['file:///shared', 'file:///a'], templates: ['mem://{key}', 'db://{table}'] })
  ], always)
  t.same(listed(catalog, 'resources').map(r => r.uri), ['file:///a', 'file:///shared', 'file:///z'])
  t.same(listed(catalog, 'resources')[0], { uri: 'file:///a', name: 'file:///a' }, 'definitions are not renamed')
  t.equal(catalog.resourceOwner('file:///shared'), 'alpha')
  t.same(listed(catalog, 'resourceTemplates').map(r => r.uriTemplate), ['db://{table}', 'mem://{key}'])
  t.same(catalog.collisions.resources, [
    { uri: 'file:///shared', kept: 'alpha', dropped: 'zeta' },
    { uri: 'mem://{key}', kept: 'alpha', dropped: 'zeta' }
  ])
  t.equal(catalog.template('mem://{key}')?.service, 'alpha')
  t.equal(catalog.template('nope://{x}'), undefined)
  catalog.set('alpha', undefined)
  t.equal(catalog.resourceOwner('file:///shared'), 'zeta', 'when the owner goes, the next one takes the URI')
  t.same(catalog.collisions.resources, [])
  const twice = catalogOf([source('s', { resources: ['file:///a', 'file:///a'] })], always)
  t.equal(twice.counts().resources, 1)
  t.same(twice.collisions.resources, [], 'one service listing a URI twice is not a collision')
})

test('compileTemplate turns RFC 6570 templates into anchored matchers', async (t) => {
  const cases: Array<[string, string[], string[]]> = [
    ['file:///{name}', ['file:///readme', 'file:///'], ['file:///a/b', 'file:///a?x', 'file:///a#f', 'xfile:///a']],
    ['file:///{+path}', ['file:///a/b/c', 'file:///a?b#c'], ['file://a']],
    ['file:///{#frag}', ['file:///a/b'], []],
    ['api://items{?page,limit}', ['api://items', 'api://items?page=2', 'api://items?page=2&limit=5'], ['api://itemsX', 'api://items/1']],
    ['api://items?a=1{&b}', ['api://items?a=1', 'api://items?a=1&b=2'], ['api://items?a=1x']],
    ['repo://{owner}{/path*}', ['repo://me', 'repo://me/a', 'repo://me/a/b'], ['repo://me?x']],
    ['host://www{.domain*}', ['host://www', 'host://www.example.com'], ['host://www/x']],
    ['m://x{;params}', ['m://x', 'm://x;a=1;b=2'], ['m://x/y']],
    ['a.b://{x}/c', ['a.b://1/c'], ['aXb://1/c', 'a.b://1/cd']]
  ]
  for (const [tpl, matches, misses] of cases) {
    const pattern = compileTemplate(tpl)
    for (const uri of matches) t.ok(pattern.test(uri), `${tpl} matches ${uri}`)
    for (const uri of misses) t.notOk(pattern.test(uri), `${tpl} does not match ${uri}`)
  }
  t.ok(compileTemplate('static://no-vars').test('static://no-vars'))
  t.notOk(compileTemplate('static://no-vars').test('static://no-vars/more'))
  const started = process.hrtime.bigint()
  t.notOk(compileTemplate('m://x{;params}').test('m://x' + ';'.repeat(50_000) + '/'), 'a hostile URI fails')
  t.notOk(compileTemplate('files://h/{dir}{name}{ext}.json').test('files://h/' + 'a'.repeat(4000) + '.jso'),
    'regression: adjacent expressions (ambiguous for a regular expression)')
  t.notOk(compileTemplate('x://{+a}/{+b}/{+c}/end').test('x://' + '/'.repeat(4000)), 'several wildcards over slashes')
  t.ok(process.hrtime.bigint() - started < 1_000_000_000n, 'without backtracking: each character looked at once per step')
})

test('resourceOwner routes an exact URI to the service listing it, then by template, most specific first', async (t) => {
  const exact = catalogOf([source('a', { resources: ['file:///a.txt'] }), source('b', { resources: ['file:///b.txt'], templates: ['file:///{name}'] })], always)
  t.equal(exact.resourceOwner('file:///a.txt'), 'a', 'a listed URI beats a matching template')
  t.equal(exact.resourceOwner('file:///b.txt'), 'b')
  const catalog = catalogOf([
    source('generic', { templates: ['repo://{+path}'] }),
    source('issues', { templates: ['repo://github/issues/{id}'] }),
    source('search', { templates: ['search://q{?query,limit}'] })
  ], always)
  t.equal(catalog.resourceOwner('repo://github/issues/42'), 'issues')
  t.equal(catalog.resourceOwner('repo://github/issues/42/comments'), 'generic', 'the specific template does not match, the general one does')
  t.equal(catalog.resourceOwner('repo://gitlab/x'), 'generic')
  t.equal(catalog.resourceOwner('search://q?query=x&limit=3'), 'search')
  t.equal(catalog.resourceOwner('search://q'), 'search')
  catalog.set('issues', undefined)
  t.equal(catalog.resourceOwner('repo://github/issues/42'), 'generic', 'routes follow the services that are up')
})

test('resourceOwner falls back to the longest common prefix beyond the scheme', async (t) => {
  const catalog = catalogOf([
    source('docs', { resources: ['file:///docs/readme.md'] }),
    source('src', { resources: ['file:///src/index.ts'] }),
    source('mem', { templates: ['memory://notes/{id}'] })
  ], always)
  t.equal(catalog.resourceOwner('file:///docs/new-page.md'), 'docs', 'created at run time, not listed yet')
  t.equal(catalog.resourceOwner('file:///src/other.ts'), 'src')
  t.equal(catalog.resourceOwner('memory://notes/1/extra'), 'mem', 'a template literal prefix counts as a prefix')
  t.equal(catalog.resourceOwner('memory://other'), 'mem', 'sharing the scheme is enough')
  t.equal(catalog.resourceOwner('http://example.com/'), undefined, 'nothing shares the scheme')
  t.equal(catalog.resourceOwner('fil:///docs'), undefined, 'a shorter scheme is another scheme')
  t.equal(catalog.resourceOwner('files:///docs'), undefined, 'a longer scheme is another scheme')
  t.equal(catalog.resourceOwner('no-scheme-at-all'), undefined)
  t.equal(catalogOf([source('b', { resources: ['note://b'] }), source('a', { resources: ['note://a'] })], always).resourceOwner('note://c'), 'b',
    'of two equally long matches, the nearest URI in sorted order')
})

test('pages follow the gateway\'s cursors; a cursor of another list or not issued here is refused', async (t) => {
  const tools = Array.from({ length: 13 }, (_, i) => `tool_${String(i).padStart(2, '0')}`)
  const catalog = catalogOf([source('fx', { tools })], always)
  const seen: string[] = []
  let cursor: unknown
  let pages = 0
  do {
    const page = catalog.list('tools', cursor, 5).value as { tools: Array<{ name: string }>, nextCursor?: string }
    seen.push(...page.tools.map(e => e.name))
    cursor = page.nextCursor
    pages++
  } while (cursor !== undefined)
  t.equal(pages, 3)
  t.same(seen, tools.map(n => 'fx__' + n))
  t.throws(() => catalog.list('prompts', Buffer.from('tools\nfx__tool_04').toString('base64url'), 5), { code: 'MCPGW_ERR_INVALID_CURSOR' })
  t.throws(() => catalog.list('tools', 'not a cursor!', 5), { code: 'MCPGW_ERR_INVALID_CURSOR' })
  t.throws(() => catalog.list('tools', 'A'.repeat(20_000), 5), { code: 'MCPGW_ERR_INVALID_CURSOR' })
  t.same(catalog.list('tools', Buffer.from('tools\nzzz').toString('base64url'), 5).value, { tools: [] }, 'past the end: an empty last page')
  const between = catalog.list('tools', Buffer.from('tools\nfx__tool_04x').toString('base64url'), 2).value as { tools: Array<{ name: string }> }
  t.same(between.tools.map(e => e.name), ['fx__tool_05', 'fx__tool_06'], 'a cursor whose entry is gone continues after it')
})

test('list_changed is sent once a burst of changes is over, for the kinds that changed, and only if they did', async (t) => {
  const { catalog, sent } = build([], always, { notifyDelay: 20 })
  catalog.set('a', source('a', { tools: ['x'] }))
  catalog.set('b', source('b', { prompts: ['p'] }))
  await new Promise(resolve => setTimeout(resolve, 80))
  t.same(sent.map(m => JSON.parse(m).method).sort(), ['notifications/prompts/list_changed', 'notifications/tools/list_changed'], 'one of each, for the burst')
  sent.length = 0
  catalog.set('a', undefined)
  catalog.set('a', source('a', { tools: ['x'] }))
  await new Promise(resolve => setTimeout(resolve, 80))
  t.same(sent, [], 'a service that went and came back with the same listing changed nothing clients see')
  catalog.set('c', source('c', { resources: ['r://1'] }))
  await new Promise(resolve => setTimeout(resolve, 80))
  t.same(sent.map(m => JSON.parse(m).method), ['notifications/resources/list_changed'])
  sent.length = 0
  catalog.set('d', source('d', { tools: ['y'] }))
  listed(catalog, 'tools')
  catalog.set('d', undefined)
  await new Promise(resolve => setTimeout(resolve, 80))
  t.same(sent.map(m => JSON.parse(m).method), ['notifications/tools/list_changed'],
    'a client that listed while a change came and went saw something that is gone: it is told')
  catalog.close()
})

test('signatures follow what clients see, and only that', async (t) => {
  const parts = { tools: ['x'], prompts: ['p'], resources: ['r://1'] }
  const base = catalogOf([source('a', parts)], always).signatures
  const changed = (sources: CatalogSource[], naming: NamingOptions = always) => {
    const now = catalogOf(sources, naming).signatures
    return { tools: now.tools !== base.tools, prompts: now.prompts !== base.prompts, resources: now.resources !== base.resources }
  }
  t.same(changed([source('a', { ...parts, tools: ['x', 'y'] })]), { tools: true, prompts: false, resources: false })
  t.same(changed([source('a', { ...parts, prompts: ['p', 'q'] })]), { tools: false, prompts: true, resources: false })
  t.same(changed([source('a', { ...parts, resources: ['r://2'] })]), { tools: false, prompts: false, resources: true })
  t.same(changed([source('a', parts, { tools: { deny: ['x'] } })]), { tools: true, prompts: false, resources: false }, 'a filter that hides a tool')
  t.same(changed([source('a', parts, { tools: { deny: ['nothing-by-that-name'] } })]), { tools: false, prompts: false, resources: false },
    'a filter that hides nothing changes nothing clients see')
  t.same(changed([source('a', parts, { tools: { descriptions: { x: 'new text' } } })]), { tools: true, prompts: false, resources: false })
  t.same(changed([source('a', parts)], never), { tools: true, prompts: true, resources: false }, 'the prefix mode changes exposed names')
  t.same(changed([source('a', parts), source('b', { prompts: ['q'] })]), { tools: false, prompts: true, resources: false }, 'a service that adds no tools')
  t.same(changed([source('c', parts)]), { tools: true, prompts: true, resources: true }, 'the same listing under another service')
  t.same(catalogOf([source('b', { tools: ['y'] }), source('a', parts)], always).signatures, catalogOf([source('a', parts), source('b', { tools: ['y'] })], always).signatures,
    'order-independent')
})

/** A small deterministic random source, so a failure replays. */
function random (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

/** What clients can observe of a catalog: every list, every route, the collisions and the signatures. */
function observe (catalog: LiveCatalog, uris: string[]): unknown {
  return {
    tools: listed(catalog, 'tools').map(e => [e.name, e.description, catalog.tool(e.name as string)?.service, catalog.tool(e.name as string)?.originalName]),
    prompts: listed(catalog, 'prompts').map(e => [e.name, catalog.prompt(e.name as string)?.service]),
    resources: listed(catalog, 'resources').map(e => [e.uri, catalog.resourceOwner(e.uri as string)]),
    templates: listed(catalog, 'resourceTemplates').map(e => [e.uriTemplate, catalog.template(e.uriTemplate as string)?.service]),
    routes: uris.map(uri => catalog.resourceOwner(uri)),
    collisions: catalog.collisions,
    signatures: catalog.signatures
  }
}

test('changed one service at a time, the catalog is always the one built from scratch', async (t) => {
  const pool = ['search', 'read', 'read.file', 'read_file', 'x'.repeat(70), 'list', 'get']
  const uris = ['file:///a', 'file:///a/b', 'mem://k/1', 'mem://other', 'db://t', 'zz://none']
  const probes = ['file:///a/c', 'mem://k/2', 'mem://kx', 'db://x/y', 'nope://', 'file:///']
  for (const naming of [always, conditional, never]) {
    const next = random(naming.prefixMode.length * 7919)
    const pick = <T> (items: T[]) => items.filter(() => next() < 0.4)
    const { catalog } = build([], naming)
    const current = new Map<string, CatalogSource>()
    for (let step = 0; step < 150; step++) {
      const service = `svc${Math.floor(next() * 6)}`
      if (next() < 0.25) {
        current.delete(service)
        catalog.set(service, undefined)
      } else {
        const tools = pick(pool)
        const filters = next() < 0.3 ? { tools: { rename: { [tools[0] ?? 'none']: 'renamed' }, descriptions: { read: 'described' } } } : {}
        const s = source(service, { tools, prompts: pick(pool), resources: pick(uris), templates: pick(['mem://k/{id}', 'file:///{+p}', 'db://{t}']) }, filters)
        current.set(service, s)
        catalog.set(service, s)
      }
      const fresh = catalogOf([...current.values()], naming)
      const [incremental, rebuilt] = [observe(catalog, probes), observe(fresh, probes)]
      if (JSON.stringify(incremental) !== JSON.stringify(rebuilt)) {
        t.same(incremental, rebuilt, `${naming.prefixMode}, step ${step}`)
        return
      }
    }
    t.pass(`${naming.prefixMode}: 150 random changes, always equal to a catalog built from scratch`)
    catalog.close()
  }
})
