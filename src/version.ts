import { readFileSync } from 'node:fs'

/**
 * The gateway's name and version, from its package.json. Looked up by walking up from this file, because the
 * module runs both from source (src/) and from the build (dist/src/).
 */
function readPackage (): { name: string, version: string } {
  let dir = new URL('.', import.meta.url)
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'fastify-mcp-gateway' && typeof pkg.version === 'string') return { name: pkg.name, version: pkg.version }
    } catch {}
    dir = new URL('..', dir)
  }
  return { name: 'fastify-mcp-gateway', version: '0.0.0' }
}

export const PACKAGE = readPackage()
