import { test } from 'tap'
import { DEFAULT_CONFIG_PATH, parseCommandLine } from '../../src/command-line.js'

test('the command line picks the config file: --config, then GATEWAY_CONFIG, then the default', async (t) => {
  t.same(parseCommandLine([], {}), { kind: 'start', configPath: DEFAULT_CONFIG_PATH, overrides: {} })
  t.same(parseCommandLine([], { GATEWAY_CONFIG: '/etc/gw.json' }), { kind: 'start', configPath: '/etc/gw.json', overrides: {} })
  t.same(parseCommandLine(['-c', 'a.json'], { GATEWAY_CONFIG: '/etc/gw.json' }), { kind: 'start', configPath: 'a.json', overrides: {} })
  t.same(parseCommandLine(['--config', 'b.json', '--port', '8080', '--host', '0.0.0.0'], {}),
    { kind: 'start', configPath: 'b.json', overrides: { port: 8080, host: '0.0.0.0' } })
  t.same(parseCommandLine(['-p', '0'], {}), { kind: 'start', configPath: DEFAULT_CONFIG_PATH, overrides: { port: 0 } })
})

test('help, version and mistakes', async (t) => {
  t.same(parseCommandLine(['--help'], {}), { kind: 'help' })
  t.same(parseCommandLine(['-v'], {}), { kind: 'version' })
  for (const port of ['eighty', '-1', '65536', '1.5']) {
    const command = parseCommandLine([`--port=${port}`], {})
    t.equal(command.kind, 'error', `--port ${port} is refused`)
    if (command.kind === 'error') t.match(command.message, /--port must be an integer from 0 to 65535/)
  }
  const unknown = parseCommandLine(['--bogus'], {})
  t.equal(unknown.kind, 'error')
  if (unknown.kind === 'error') {
    t.match(unknown.message, /Unknown option '--bogus'/)
    t.match(unknown.message, /Usage: mcp-gateway/, 'the usage follows the mistake')
  }
})
