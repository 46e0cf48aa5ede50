import { test } from 'tap'
import { Catalog, type CatalogSource, templatePattern } from '../../src/catalog.js'
import type { Prompt, Resource, ResourceTemplate, ServiceListing, Tool } from '../../src/mcp-types.js'
import { shortHash } from '../../src/naming.js'

const always = { prefixMode: 'always', separator: '__' } as const
const never = { prefixMode: 'never', separator: '__' } as const

interface ListingParts {
  tools?: string[]
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
    tools: tools.map(tool),
    prompts: prompts.map(prompt),
    resources: resources.map(resource),
    resourceTemplates: templates.map(template),
    digests: { tools: 't1', resources: 'r1', prompts: 'p1', ...digests },
    capabilities: { tools: {} },
    serverInfo: { name: 'test', version: '1.0.0' },
    protocolVersion: '2025-06-18'
  }
}

const source = (service: string, parts: ListingParts = {}, filters: Omit<CatalogSource, 'service' | 'listing'> = {}): CatalogSource =>
  ({ service, listing: listing(parts), ...filters })

test('an empty catalog has nothing and routes nothing', async (t) => {
  const catalog = new Catalog([], always)
  t.same(catalog.tools, [])
  t.same(catalog.prompts, [])
  t.same(catalog.resources, [])
  t.same(catalog.templates, [])
  t.same(catalog.collisions, { tools: [], prompts: [], resources: [] })
  t.equal(catalog.services.size, 0)
  t.equal(catalog.resourceOwner('file:///x'), undefined)
  t.equal(catalog.tool('x'), undefined)
})

test('tools and prompts of several services are merged under prefixed names, sorted by name', async (t) => {
  const catalog = new Catalog([
    source('github', { tools: ['search', 'create_issue'], prompts: ['review'] }),
    source('fs', { tools: ['read_file'] })
  ], always)
  t.same(catalog.tools.map(e => e.name), ['fs__read_file', 'github__create_issue', 'github__search'])
  t.same(catalog.prompts.map(e => e.name), ['github__review'])

  const entry = catalog.tool('github__search')
  t.same(entry, {
    name: 'github__search',
    service: 'github',
    originalName: 'search',
    definition: { name: 'github__search', description: 'upstream search', inputSchema: { type: 'object' } }
  })
  t.equal(catalog.tool('search'), undefined, 'only exposed names are looked up')
  t.equal(catalog.prompt('github__review')?.originalName, 'review')
  t.equal(catalog.prompt('github__review')?.service, 'github')
  t.equal(catalog.prompt('review'), undefined)
  t.same([...catalog.services].sort(), ['fs', 'github'])
})

test('the upstream definition is not modified and unknown fields are carried through', async (t) => {
  const upstream: Tool = { name: 'x', inputSchema: { type: 'object' }, title: 'X', annotations: { readOnlyHint: true } }
  const own = listing()
  own.tools.push(upstream)
  const catalog = new Catalog([{ service: 's', listing: own }], always)
  t.same(catalog.tool('s__x')?.definition, { name: 's__x', inputSchema: { type: 'object' }, title: 'X', annotations: { readOnlyHint: true } })
  t.equal(upstream.name, 'x', 'the listing keeps its own name')
})

test('services are taken alphabetically whatever the input order, so the first one keeps a shared name', async (t) => {
  const a = source('alpha', { tools: ['search'], prompts: ['hello'] })
  const b = source('beta', { tools: ['search'], prompts: ['hello'] })
  for (const sources of [[a, b], [b, a]]) {
    const catalog = new Catalog(sources, never)
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
    t.equal(catalog.prompts.length, 2, 'nothing is dropped')
  }
})

test('tools allow and deny filters use globs; deny wins over allow', async (t) => {
  const catalog = new Catalog([
    source('git', { tools: ['git_status', 'git_push', 'git_log', 'clone'] }, { tools: { allow: ['git_*'], deny: ['git_push'] } })
  ], never)
  t.same(catalog.tools.map(e => e.name), ['git_log', 'git_status'])
})

test('a deny filter alone hides only what it names', async (t) => {
  const catalog = new Catalog([
    source('s', { tools: ['a', 'b', 'c'], prompts: ['a', 'b'] }, { tools: { deny: ['b'] }, prompts: { deny: ['*'] } })
  ], never)
  t.same(catalog.tools.map(e => e.name), ['a', 'c'])
  t.same(catalog.prompts, [])
})

test('an empty allow list exposes nothing', async (t) => {
  const catalog = new Catalog([source('s', { tools: ['a', 'b'] }, { tools: { allow: [] } })], never)
  t.same(catalog.tools, [])
})

test('filters apply to their own kind and service only', async (t) => {
  const catalog = new Catalog([
    source('a', { tools: ['x'], prompts: ['x'] }, { tools: { deny: ['x'] } }),
    source('b', { tools: ['x'], prompts: ['x'] })
  ], always)
  t.same(catalog.tools.map(e => e.name), ['b__x'])
  t.same(catalog.prompts.map(e => e.name), ['a__x', 'b__x'])
})

test('rename sets the exposed name verbatim and descriptions override the upstream text', async (t) => {
  const catalog = new Catalog([
    source('github', { tools: ['search_issues', 'other'], prompts: ['review'] }, {
      tools: { rename: { search_issues: 'find_issues' }, descriptions: { search_issues: 'Find GitHub issues' } },
      prompts: { rename: { review: 'code_review' }, descriptions: { review: 'Review a diff' } }
    })
  ], always)
  t.same(catalog.tools.map(e => e.name), ['find_issues', 'github__other'])
  const renamed = catalog.tool('find_issues')
  t.equal(renamed?.originalName, 'search_issues')
  t.equal(renamed?.definition.name, 'find_issues')
  t.equal(renamed?.definition.description, 'Find GitHub issues')
  t.equal(catalog.tool('github__other')?.definition.description, 'upstream other', 'others keep their description')
  t.equal(catalog.prompt('code_review')?.definition.description, 'Review a diff')
  t.equal(catalog.prompt('code_review')?.originalName, 'review')
})

test('allow and deny match upstream names, not renamed ones', async (t) => {
  const catalog = new Catalog([
    source('s', { tools: ['a', 'b'] }, { tools: { allow: ['a'], rename: { a: 'renamed_a', b: 'renamed_b' } } })
  ], always)
  t.same(catalog.tools.map(e => e.name), ['renamed_a'])
})

test('resources keep their URIs and a URI two services list belongs to the first alphabetically', async (t) => {
  const sources = [
    source('zeta', { resources: ['file:///shared', 'file:///z'], templates: ['mem://{key}'] }),
    source('alpha', { resources: ['file:///shared', 'file:///a'], templates: ['mem://{key}', 'db://{table}'] })
  ]
  const catalog = new Catalog(sources, always)
  t.same(catalog.resources.map(r => [r.key, r.service]), [
    ['file:///a', 'alpha'],
    ['file:///shared', 'alpha'],
    ['file:///z', 'zeta']
  ])
  t.same(catalog.resources[0]?.definition, { uri: 'file:///a', name: 'file:///a' }, 'definitions are not renamed')
  t.same(catalog.templates.map(r => [r.key, r.service]), [['db://{table}', 'alpha'], ['mem://{key}', 'alpha']])
  t.same(catalog.collisions.resources, [
    { uri: 'file:///shared', kept: 'alpha', dropped: 'zeta' },
    { uri: 'mem://{key}', kept: 'alpha', dropped: 'zeta' }
  ])
  t.equal(catalog.template('mem://{key}')?.service, 'alpha')
  t.equal(catalog.template('nope://{x}'), undefined)
})

test('one service listing a URI twice is not a collision', async (t) => {
  const catalog = new Catalog([source('s', { resources: ['file:///a', 'file:///a'] })], always)
  t.equal(catalog.resources.length, 1)
  t.same(catalog.collisions.resources, [])
})

test('services counts every service that contributes something', async (t) => {
  const catalog = new Catalog([
    source('tools', { tools: ['t'] }),
    source('prompts', { prompts: ['p'] }),
    source('res', { resources: ['file:///r'] }),
    source('tpl', { templates: ['x://{y}'] }),
    source('nothing')
  ], always)
  t.same([...catalog.services].sort(), ['prompts', 'res', 'tools', 'tpl'])
})

test('templatePattern turns RFC 6570 templates into anchored matchers', async (t) => {
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
    const pattern = templatePattern(tpl)
    for (const uri of matches) t.ok(pattern.test(uri), `${tpl} matches ${uri}`)
    for (const uri of misses) t.notOk(pattern.test(uri), `${tpl} does not match ${uri}`)
  }
  t.ok(templatePattern('static://no-vars').test('static://no-vars'))
  t.notOk(templatePattern('static://no-vars').test('static://no-vars/more'))
})

test('resourceOwner routes an exact URI to the service listing it', async (t) => {
  const catalog = new Catalog([
    source('a', { resources: ['file:///a.txt'] }),
    source('b', { resources: ['file:///b.txt'], templates: ['file:///{name}'] })
  ], always)
  t.equal(catalog.resourceOwner('file:///a.txt'), 'a', 'a listed URI beats a matching template')
  t.equal(catalog.resourceOwner('file:///b.txt'), 'b')
})

test('resourceOwner routes by template, the longest literal prefix first', async (t) => {
  const catalog = new Catalog([
    source('generic', { templates: ['repo://{+path}'] }),
    source('issues', { templates: ['repo://github/issues/{id}'] }),
    source('search', { templates: ['search://q{?query,limit}'] })
  ], always)
  t.equal(catalog.resourceOwner('repo://github/issues/42'), 'issues')
  t.equal(catalog.resourceOwner('repo://github/issues/42/comments'), 'generic', 'the specific template does not match, the general one does')
  t.equal(catalog.resourceOwner('repo://gitlab/x'), 'generic')
  t.equal(catalog.resourceOwner('search://q?query=x&limit=3'), 'search')
  t.equal(catalog.resourceOwner('search://q'), 'search')
})

test('resourceOwner falls back to the longest common prefix beyond the scheme', async (t) => {
  const catalog = new Catalog([
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
})

test('resourceOwner breaks prefix ties in favour of the first URI in sorted order', async (t) => {
  const catalog = new Catalog([
    source('b', { resources: ['note://b'] }),
    source('a', { resources: ['note://a'] })
  ], always)
  t.equal(catalog.resourceOwner('note://c'), 'a')
})

test('signatures are stable for the same input and order-independent', async (t) => {
  const a = source('a', { tools: ['x'] })
  const b = source('b', { tools: ['y'] })
  const one = new Catalog([a, b], always)
  const two = new Catalog([b, a], always)
  t.same(one.signatures, two.signatures)
})

test('a signature changes when its kind changes and only then', async (t) => {
  const parts = { tools: ['x'], prompts: ['p'], resources: ['r://1'] }
  const base = new Catalog([source('a', parts)], always)

  const tools = new Catalog([source('a', { ...parts, tools: ['x', 'y'], digests: { tools: 't2' } })], always)
  t.not(tools.signatures.tools, base.signatures.tools)
  t.equal(tools.signatures.prompts, base.signatures.prompts)
  t.equal(tools.signatures.resources, base.signatures.resources)

  const prompts = new Catalog([source('a', { ...parts, prompts: ['p', 'q'], digests: { prompts: 'p2' } })], always)
  t.equal(prompts.signatures.tools, base.signatures.tools)
  t.not(prompts.signatures.prompts, base.signatures.prompts)

  const resources = new Catalog([source('a', { ...parts, resources: ['r://2'], digests: { resources: 'r2' } })], always)
  t.not(resources.signatures.resources, base.signatures.resources)
  t.equal(resources.signatures.tools, base.signatures.tools)

  const filtered = new Catalog([source('a', parts, { tools: { deny: ['y'] } })], always)
  t.not(filtered.signatures.tools, base.signatures.tools, 'a tools filter changes the tools list')
  t.equal(filtered.signatures.prompts, base.signatures.prompts, 'but not the prompts list')

  const promptFilter = new Catalog([source('a', parts, { prompts: { deny: ['q'] } })], always)
  t.equal(promptFilter.signatures.tools, base.signatures.tools)
  t.not(promptFilter.signatures.prompts, base.signatures.prompts)

  const mode = new Catalog([source('a', { tools: ['x'] })], never)
  t.not(mode.signatures.tools, base.signatures.tools, 'the prefix mode changes exposed names')
  const separator = new Catalog([source('a', { tools: ['x'] })], { prefixMode: 'always', separator: '-' })
  t.not(separator.signatures.tools, base.signatures.tools, 'so does the separator')

  const another = new Catalog([source('a', { tools: ['x'] }), source('b', { tools: ['z'] })], always)
  t.not(another.signatures.tools, base.signatures.tools, 'a new service with tools')

  const renamed = new Catalog([{ ...source('c', { tools: ['x'] }) }], always)
  t.not(renamed.signatures.tools, base.signatures.tools, 'the same listing under another service')
})

test('a signature does not change for an upstream that adds nothing clients see', async (t) => {
  const base = new Catalog([source('a', { tools: ['x'] })], always)
  const withEmpty = new Catalog([source('a', { tools: ['x'] }), source('b', { prompts: ['p'] })], always)
  t.same(withEmpty.tools, base.tools, 'clients see the same tools')
  t.equal(withEmpty.signatures.tools, base.signatures.tools, 'so the tools signature stays')
  const reordered = new Catalog([source('a', { tools: ['x'] }, { tools: { deny: ['y'], allow: ['*'] } })], always)
  const same = new Catalog([source('a', { tools: ['x'] }, { tools: { allow: ['*'], deny: ['y'] } })], always)
  t.same(reordered.tools, same.tools)
  t.equal(reordered.signatures.tools, same.signatures.tools, 'the key order of a filter is not visible')
})
