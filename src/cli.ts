#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { startServer } from './server.js'
import { PACKAGE } from './version.js'

/** `mcp-gateway [--config FILE] [--port N] [--host H]`: the standalone gateway. Exit code 1 on any start-up error. */

const USAGE = `Usage: mcp-gateway [options]

  -c, --config FILE   gateway config (default: $GATEWAY_CONFIG, else config/gateway.json)
  -p, --port N        port to listen on (overrides PORT and the config)
      --host H        address to listen on (overrides HOST and the config)
  -h, --help          show this help
  -v, --version       show the version
`

async function main (): Promise<void> {
  let values
  try {
    values = parseArgs({
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' }
      },
      strict: true
    }).values
  } catch (err) {
    process.stderr.write(`mcp-gateway: ${(err as Error).message}\n\n${USAGE}`)
    process.exit(1)
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return
  }
  if (values.version === true) {
    process.stdout.write(PACKAGE.version + '\n')
    return
  }
  let port: number | undefined
  if (values.port !== undefined) {
    port = Number(values.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`mcp-gateway: --port must be an integer from 0 to 65535, got ${JSON.stringify(values.port)}\n`)
      process.exit(1)
    }
  }
  const configPath = values.config ?? (process.env.GATEWAY_CONFIG !== undefined && process.env.GATEWAY_CONFIG !== '' ? process.env.GATEWAY_CONFIG : 'config/gateway.json')
  try {
    await startServer({
      configPath,
      overrides: { ...(port !== undefined ? { port } : {}), ...(values.host !== undefined ? { host: values.host } : {}) }
    })
  } catch (err) {
    process.stderr.write(`mcp-gateway: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

await main()
