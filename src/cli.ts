#!/usr/bin/env node
import { parseCommandLine, USAGE } from './command-line.js'
import { startServer } from './server.js'
import { PACKAGE } from './version.js'

/** `mcp-gateway [--config FILE] [--port N] [--host H]`: the standalone gateway. Exit code 1 on any start-up error. */

const command = parseCommandLine(process.argv.slice(2), process.env)
switch (command.kind) {
  case 'help':
    process.stdout.write(USAGE)
    break
  case 'version':
    process.stdout.write(PACKAGE.version + '\n')
    break
  case 'error':
    process.stderr.write(`mcp-gateway: ${command.message}\n`)
    process.exitCode = 1
    break
  case 'start':
    try {
      await startServer({ configPath: command.configPath, overrides: command.overrides })
    } catch (err) {
      process.stderr.write(`mcp-gateway: ${(err as Error).message}\n`)
      process.exit(1)
    }
}
