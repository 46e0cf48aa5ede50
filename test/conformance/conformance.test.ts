import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { startEverythingHttp, startGateway } from '../helper.js'
import { startConformanceServer } from '../fixtures/conformance-server.js'

/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against the gateway's
 * `/mcp`, with the conformance fixture behind it in no-prefix mode. The tool needs Node 22, which npx fetches from
 * the npm registry (the `node@22` package), so this test needs the registry the first time it runs on a machine. Every
 * scenario of the suite (active and pending) must pass; the ones listed in expected-failures.yml, with the
 * reason, are allowed to fail — and the run fails when one of them starts passing, so the list stays true.
 */

const CONFORMANCE = '@modelcontextprotocol/conformance@0.1.16'
const EXPECTED_FAILURES = fileURLToPath(new URL('./expected-failures.yml', import.meta.url))
/** The first run downloads Node 22 and the suite. */
const SUITE_TIMEOUT = 10 * 60_000

interface Check {
  id: string
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED'
  errorMessage?: string
}

/** Runs the conformance CLI against `url`; resolves its exit code and output. */
async function conformance (args: string): Promise<{ code: number | null, output: string }> {
  const child = spawn('npx', ['-y', '-p', 'node@22', '-p', CONFORMANCE, '-c', `conformance server ${args}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' }
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_TIMEOUT)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  clearTimeout(timer)
  return { code, output }
}

test('the conformance suite passes against the gateway', { timeout: SUITE_TIMEOUT + 60_000 }, async (t) => {
  const upstream = await startConformanceServer(t)
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [{ id: 'conformance', url: upstream.url }] })
  const results = await mkdtemp(join(tmpdir(), 'mcp-gateway-conformance-'))
  t.teardown(() => rm(results, { recursive: true, force: true }))

  const { code, output } = await conformance(`--url ${gateway.mcp.href} --suite all --expected-failures ${EXPECTED_FAILURES} -o ${results}`)

  const scenarios = (await readdir(results)).filter(name => name.startsWith('server-'))
  t.ok(scenarios.length >= 32, `${scenarios.length} scenarios ran (the active suite has 30, pending 2)`)
  for (const dir of scenarios.sort()) {
    const checks = JSON.parse(await readFile(join(results, dir, 'checks.json'), 'utf8')) as Check[]
    const name = dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '')
    const bad = checks.filter(c => c.status === 'FAILURE' || c.status === 'WARNING')
    t.same(bad.map(c => `${c.id}: ${c.status} ${c.errorMessage ?? ''}`), [], `${name}: ${checks.length - bad.length}/${checks.length} checks pass`)
  }
  const summary = /Total: \d+ passed, \d+ failed/.exec(output)?.[0]
  t.ok(summary, 'the suite printed its summary')
  t.comment(summary ?? output.slice(-2000))
  t.equal(code, 0, 'the conformance CLI exits 0 (no unexpected failure, no stale expected one)')
})

test('regression: resources-subscribe and resources-unsubscribe pass in front of server-everything', { timeout: SUITE_TIMEOUT + 60_000 }, async (t) => {
  // The scenarios subscribe to test://watched-resource, which server-everything does not list but accepts (the
  // spec lets servers watch what they do not list): the gateway must route it to the service that takes
  // subscriptions rather than answer -32002.
  const everything = await startEverythingHttp(t)
  const gateway = await startGateway(t, { prefixMode: 'never', servers: [{ id: 'everything', url: everything.url }] })
  for (const scenario of ['resources-subscribe', 'resources-unsubscribe']) {
    const { code, output } = await conformance(`--url ${gateway.mcp.href} --scenario ${scenario}`)
    t.equal(code, 0, `${scenario}: ${/Passed: \d+\/\d+[^\n]*/.exec(output)?.[0] ?? output.slice(-500)}`)
  }
})
