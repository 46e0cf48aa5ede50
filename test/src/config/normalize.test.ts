/* eslint-disable no-template-curly-in-string -- `${VAR}` in plain strings is the syntax under test */
import { test } from 'tap'
import { envExpander } from '../../../src/config/expand.js'
import { resolveConfig } from '../../../src/config/load.js'
import { ConfigProblems, DEFAULT_UPSTREAM, normalizeServer, serviceConflicts } from '../../../src/config/normalize.js'

test('envExpander replaces ${NAME} and ${NAME:-fallback}', async (t) => {
  const expand = envExpander({ A: 'alpha', B: 'beta', EMPTY: '' })
  t.equal(expand('${A}', 'f'), 'alpha')
  t.equal(expand('x-${A}-${B}-y', 'f'), 'x-alpha-beta-y')
  t.equal(expand('${C:-gamma}', 'f'), 'gamma')
  t.equal(expand('${C:-}', 'f'), '', 'an empty fallback')
  t.equal(expand('${A:-unused}', 'f'), 'alpha', 'a set variable wins over its fallback')
  t.equal(expand('${EMPTY:-used}', 'f'), 'used', 'an empty variable counts as unset')
  t.equal(expand('${C:-a:b/c}', 'f'), 'a:b/c', 'fallbacks may hold colons and slashes')
  t.equal(expand('$A {A} ${ A } ${1A}', 'f'), '$A {A} ${ A } ${1A}', 'only ${NAME} forms are variables')
  t.equal(expand('no variables', 'f'), 'no variables')
})

test('envExpander names the variable and the field when a variable is missing', async (t) => {
  const expand = envExpander({ EMPTY: '' })
  t.throws(() => expand('Bearer ${TOKEN}', 'servers[0].headers.authorization'), {
    message: 'servers[0].headers.authorization: environment variable TOKEN is not set (write ${TOKEN:-default} for a fallback)'
  })
  t.throws(() => expand('${EMPTY}', 'f'), { message: /environment variable EMPTY is not set/ })
})

test('envExpander takes ${env:NAME} (Cursor, VS Code) and refuses ${input:…} with what to write instead', async (t) => {
  const expand = envExpander({ A: 'alpha' })
  t.equal(expand('${env:A}', 'f'), 'alpha')
  t.equal(expand('${env:B:-beta}', 'f'), 'beta')
  t.throws(() => expand('Bearer ${input:token}', 'servers[0].headers.authorization'), {
    message: /servers\[0\]\.headers\.authorization: \$\{input:token\} asks an editor to prompt .* write \$\{env:NAME\}/
  })
})

test('expanded values are not expanded again', async (t) => {
  const expand = envExpander({ A: '${B}', B: 'nested' })
  t.equal(expand('${A}', 'f'), '${B}')
})

test('normalizeServer applies the given defaults', async (t) => {
  const defaults = { ...DEFAULT_UPSTREAM, timeout: 7, maxConnections: 3 }
  const server = normalizeServer({ id: 'a', url: 'http://127.0.0.1:1/' }, defaults)
  t.equal(server.timeout, 7)
  t.equal(server.maxConnections, 3)
  t.equal(server.service, 'a')
  t.equal(normalizeServer({ id: 'a', url: 'http://127.0.0.1:1/', timeout: 9 }, defaults).timeout, 9)
})

test('normalizeServer throws ConfigProblems naming the field it was given', async (t) => {
  let caught: unknown
  try {
    normalizeServer({ id: 'a', url: 'http://127.0.0.1:1/', command: 'x' }, DEFAULT_UPSTREAM, 'servers[4]')
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof ConfigProblems)
  t.same((caught as ConfigProblems).problems, ['servers[4]: set either url (an HTTP server) or command (a stdio server), not both'])
  t.equal((caught as ConfigProblems).message, 'servers[4]: set either url (an HTTP server) or command (a stdio server), not both')
  t.throws(() => normalizeServer({ id: 'a' }, DEFAULT_UPSTREAM), {
    message: 'server: needs url (an HTTP server) or command (a stdio server)',
    problems: ['server: needs url (an HTTP server) or command (a stdio server)']
  }, 'the field defaults to "server"')
})

test('serviceConflicts checks a candidate against every other replica of its service', async (t) => {
  const server = (id: string, extra: Record<string, unknown> = {}) =>
    normalizeServer({ id, service: 's', url: 'http://127.0.0.1:1/', ...extra }, DEFAULT_UPSTREAM)
  const existing = [server('s-1'), server('s-2', { tools: { allow: ['x'] } }), normalizeServer({ id: 'other', url: 'http://127.0.0.1:1/', stateless: true }, DEFAULT_UPSTREAM)]

  t.same(serviceConflicts(existing, server('s-3')), [], 'agreeing, and unset options agree with anything')
  t.same(serviceConflicts(existing, server('s-3', { tools: { allow: ['x'] } })), [])
  t.same(serviceConflicts(existing, server('s-3', { tools: { allow: ['y'] } })), [
    'server "s-3": its tools options differ from those of "s-2", another replica of service "s"; set them the same, or on one replica only'
  ])
  t.same(serviceConflicts(existing, server('s-3', { stateless: true })), [
    'server "s-3": sessionMode differs from "s-1", another replica of service "s"; replicas must agree'
  ], 'one disagreement is reported once, against the first replica that set it')
  t.same(serviceConflicts(existing, server('s-2', { tools: { allow: ['y'] } })), [], 'a candidate replacing s-2 is not checked against itself')
  t.same(serviceConflicts(existing), [], 'the configured servers agree')
})

test('regression: a definition cannot set the headers the gateway manages, nor smuggle CR, LF or NUL', async (t) => {
  const problems = (server: Record<string, unknown>) => {
    try {
      normalizeServer({ id: 'a', ...server } as Parameters<typeof normalizeServer>[0], DEFAULT_UPSTREAM, 'servers[0]')
      return []
    } catch (err) {
      return (err as ConfigProblems).problems
    }
  }
  t.match(problems({ url: 'http://127.0.0.1:1/', headers: { 'Transfer-Encoding': 'chunked', 'Mcp-Session-Id': 'x', authorization: 'Bearer t' } }), [
    /servers\[0\]\.headers\.Transfer-Encoding: the gateway sets this header itself/,
    /servers\[0\]\.headers\.Mcp-Session-Id: the gateway sets this header itself/
  ])
  t.match(problems({ url: 'http://127.0.0.1:1/', headers: { 'x-a': 'ok\r\nx-injected: 1' } }), [/headers\.x-a: a header value cannot hold CR, LF or NUL/])
  t.match(problems({ command: 'node\0evil' }), [/servers\[0\]\.command: cannot hold a NUL character/])
  t.match(problems({ command: 'node', args: ['a', 'b\0'] }), [/servers\[0\]\.args\[1\]: cannot hold a NUL character/])
  t.match(problems({ command: 'node', env: { 'K\0': 'v' } }), [/servers\[0\]\.env\.K\0: cannot hold a NUL character/])
  t.same(problems({ url: 'http://127.0.0.1:1/', headers: { authorization: 'Bearer t', 'x-tenant': 'a' } }), [], 'other headers are the operator\'s')
})

test('balancer: defaults, a service setting it on one replica, replicas that disagree', async (t) => {
  const config = resolveConfig({
    balancer: { strategy: 'least-connections' },
    servers: [
      { id: 'a1', service: 'a', url: 'http://127.0.0.1:1/a', balancer: { strategy: 'consistent-hash', hashOn: 'principal' } },
      { id: 'a2', service: 'a', url: 'http://127.0.0.1:1/b' }
    ]
  }, { env: {}, envOverrides: false })
  t.same(config.balancer, { strategy: 'least-connections', hashOn: 'address' })
  t.same(config.servers[0]?.balancer, { strategy: 'consistent-hash', hashOn: 'principal' })
  t.throws(() => resolveConfig({
    servers: [
      { id: 'a1', service: 'a', url: 'http://127.0.0.1:1/a', balancer: { strategy: 'random' } },
      { id: 'a2', service: 'a', url: 'http://127.0.0.1:1/b', balancer: { strategy: 'weighted' } }
    ]
  }, { env: {}, envOverrides: false }), { message: /server "a2": its balancer options differ from those of "a1"/ })
  t.throws(() => resolveConfig({ balancer: { strategy: 'fastest' } }, { env: {}, envOverrides: false }), { message: /balancer\.strategy/ })
})

test('alert rules: defaults, thresholds each condition needs, webhooks that exist, unique names', async (t) => {
  const config = resolveConfig({
    webhooks: { hook: { url: 'http://127.0.0.1:9/hook' }, slack: { url: 'https://hooks.example.com/x', format: 'slack' } },
    alerts: [{ when: 'upstream_down', notify: ['hook'] }, { when: 'anomaly' }, { when: 'error_rate', over: 0.1, for: 5000, upstreams: ['a*'], minCalls: 3 }]
  }, { env: {} })
  t.same(config.webhooks, { hook: { url: 'http://127.0.0.1:9/hook', format: 'json', headers: {} }, slack: { url: 'https://hooks.example.com/x', format: 'slack', headers: {} } })
  t.same(config.alerts, [
    { name: 'upstream_down', when: 'upstream_down', over: 0, forMs: 0, notify: ['hook'], upstreams: [], minCalls: 10 },
    { name: 'anomaly > 4', when: 'anomaly', over: 4, forMs: 0, notify: [], upstreams: [], minCalls: 10 },
    { name: 'error_rate > 0.1', when: 'error_rate', over: 0.1, forMs: 5000, notify: [], upstreams: ['a*'], minCalls: 3 }
  ])
  let message = ''
  try {
    resolveConfig({
      alerts: [{ when: 'latency_p99' }, { when: 'error_rate', over: 5 }, { when: 'upstream_down', notify: ['nope'] }, { name: 'x', when: 'anomaly' }, { name: 'x', when: 'anomaly' }]
    }, { env: {} })
  } catch (err) {
    message = (err as Error).message
  }
  t.match(message, /alerts\[0\]\.over: latency_p99 needs a threshold \(milliseconds\)/)
  t.match(message, /alerts\[1\]\.over: an error rate is a share of calls, 0\.\.1/)
  t.match(message, /alerts\[2\]\.notify: no webhook "nope" in webhooks/)
  t.match(message, /alerts\[4\]\.name: "x" is used by another rule/)
})
