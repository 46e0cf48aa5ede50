import { readFile } from 'node:fs/promises'
import { test } from 'tap'
import { GatewayConfigFile } from '../../schemas/config.js'
import { resolveConfig } from '../../src/config/load.js'

/**
 * config/gateway.schema.json is what editors use to check and complete config files ("$schema" in each). It is
 * generated from schemas/config.ts, so it must never drift from what the gateway validates; and the example
 * configs that point at it must be valid.
 */

const configFile = (name: string) => new URL(`../../config/${name}`, import.meta.url)

test('config/gateway.schema.json is the JSON Schema of GatewayConfigFile, up to date', async (t) => {
  const committed = await readFile(configFile('gateway.schema.json'), 'utf8')
  const generated = JSON.stringify(GatewayConfigFile, null, 2) + '\n'
  t.equal(committed, generated,
    'config/gateway.schema.json is stale: schemas/config.ts changed; regenerate it with `npm run schema` and commit it')
})

for (const [name, ids] of [
  ['gateway.json', ['everything', 'memory']],
  ['compose.json', ['everything', 'memory', 'everything-http']]
] as const) {
  test(`config/${name} is a valid gateway configuration`, async (t) => {
    const file = JSON.parse(await readFile(configFile(name), 'utf8')) as Record<string, unknown>
    t.equal(file.$schema, './gateway.schema.json', 'editors find the schema beside it')
    // No environment at all: the machine running the tests cannot make an invalid file pass.
    const config = resolveConfig(file, { source: `config/${name}`, env: {}, envOverrides: false })
    t.same(config.servers.map(s => s.id), ids)
    const memory = config.servers.find(s => s.id === 'memory')
    t.equal(memory?.env.MEMORY_FILE_PATH, '/tmp/mcp-gateway-memory.jsonl', 'MEMORY_FILE_PATH falls back to the default written in the file')
  })
}
