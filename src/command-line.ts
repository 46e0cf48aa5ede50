import { parseArgs } from 'node:util'
import type { ConfigOverrides } from './config/load.js'

/** Reading the `mcp-gateway` command line; separate from cli.ts so it can be tested without starting a process. */

export const USAGE = `Usage: mcp-gateway [options]

  -c, --config FILE   gateway config (default: $GATEWAY_CONFIG, else config/gateway.json)
  -p, --port N        port to listen on (overrides PORT and the config)
      --host H        address to listen on (overrides HOST and the config)
  -h, --help          show this help
  -v, --version       show the version
`

export const DEFAULT_CONFIG_PATH = 'config/gateway.json'

export type Command =
  | { kind: 'start', configPath: string, overrides: ConfigOverrides }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'error', message: string }

export function parseCommandLine (argv: string[], env: NodeJS.ProcessEnv): Command {
  let values
  try {
    values = parseArgs({
      args: argv,
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
    return { kind: 'error', message: `${(err as Error).message}\n\n${USAGE}` }
  }
  if (values.help === true) return { kind: 'help' }
  if (values.version === true) return { kind: 'version' }
  const overrides: ConfigOverrides = {}
  if (values.port !== undefined) {
    const port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port > 65535) {
      return { kind: 'error', message: `--port must be an integer from 0 to 65535, got ${JSON.stringify(values.port)}` }
    }
    overrides.port = port
  }
  if (values.host !== undefined) overrides.host = values.host
  const fromEnv = env.GATEWAY_CONFIG !== undefined && env.GATEWAY_CONFIG !== '' ? env.GATEWAY_CONFIG : undefined
  return { kind: 'start', configPath: values.config ?? fromEnv ?? DEFAULT_CONFIG_PATH, overrides }
}
