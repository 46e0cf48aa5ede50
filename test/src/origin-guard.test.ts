import { test } from 'tap'
import { createRequestGuard, type GuardInput } from '../../src/origin-guard.js'

const defaults = createRequestGuard({ allowedOrigins: [], allowedHosts: null })
const loopback = (host: string | undefined, origin?: string): GuardInput => ({ host, origin, localAddress: '127.0.0.1' })
const external = (host: string | undefined, origin?: string): GuardInput => ({ host, origin, localAddress: '10.0.0.5' })

test('over loopback, loopback Host names pass, with or without a port', async (t) => {
  for (const host of ['localhost', 'localhost:3000', '127.0.0.1', '127.0.0.1:8080', '[::1]', '[::1]:3000', 'LOCALHOST:3000']) {
    t.equal(defaults(loopback(host)), undefined, host)
  }
})

test('every loopback local address counts as loopback', async (t) => {
  for (const localAddress of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    const err = defaults({ host: 'evil.example.com', origin: undefined, localAddress })
    t.equal(err?.code, 'MCPGW_ERR_HOST_FORBIDDEN', localAddress)
  }
})

test('over loopback, any other Host is refused (DNS rebinding)', async (t) => {
  const err = defaults(loopback('evil.example.com'))
  t.equal(err?.code, 'MCPGW_ERR_HOST_FORBIDDEN')
  t.equal(err?.statusCode, 403)
  t.equal(err?.message, 'Forbidden: Host "evil.example.com" is not allowed (add it to allowedHosts)')
  for (const host of ['evil.example.com:3000', '127.0.0.2', 'localhost.evil.com', '192.168.1.2:3000', '[::2]:3000', '']) {
    t.equal(defaults(loopback(host))?.code, 'MCPGW_ERR_HOST_FORBIDDEN', JSON.stringify(host))
  }
  t.equal(defaults(loopback(undefined))?.message, 'Forbidden: Host "" is not allowed (add it to allowedHosts)', 'a missing Host')
})

test('over a non-loopback address, any Host passes when allowedHosts is not set', async (t) => {
  for (const host of ['gateway.internal:3000', 'evil.example.com', '10.0.0.5', undefined]) {
    t.equal(defaults(external(host)), undefined, String(host))
  }
})

test('with allowedHosts, every request must name a listed host, with or without its port', async (t) => {
  const guard = createRequestGuard({ allowedOrigins: [], allowedHosts: ['gateway.example.com', 'api.example.com:8443'] })
  t.equal(guard(external('gateway.example.com')), undefined)
  t.equal(guard(external('gateway.example.com:3000')), undefined, 'a listed hostname allows any port')
  t.equal(guard(external('GATEWAY.example.com')), undefined, 'case-insensitive')
  t.equal(guard(external('api.example.com:8443')), undefined)
  t.equal(guard(external('api.example.com:9000'))?.code, 'MCPGW_ERR_HOST_FORBIDDEN', 'a listed host:port allows only that port')
  t.equal(guard(external('api.example.com'))?.code, 'MCPGW_ERR_HOST_FORBIDDEN')
  t.equal(guard(external('other.example.com'))?.code, 'MCPGW_ERR_HOST_FORBIDDEN')
  t.equal(guard(external(undefined))?.code, 'MCPGW_ERR_HOST_FORBIDDEN')
  t.equal(guard(loopback('localhost'))?.code, 'MCPGW_ERR_HOST_FORBIDDEN', 'loopback names are not implied once the list is set')
  t.equal(guard(loopback('gateway.example.com')), undefined, 'a listed host passes over loopback too')
})

test('requests without an Origin header pass the origin check', async (t) => {
  t.equal(defaults(loopback('localhost:3000')), undefined)
  t.equal(defaults(external('gw.example.com')), undefined)
})

test('a same-origin Origin is accepted', async (t) => {
  t.equal(defaults(loopback('localhost:3000', 'http://localhost:3000')), undefined)
  t.equal(defaults(loopback('127.0.0.1:3000', 'http://127.0.0.1:3000')), undefined)
  t.equal(defaults(loopback('[::1]:3000', 'http://[::1]:3000')), undefined)
  t.equal(defaults(external('gw.example.com', 'https://gw.example.com')), undefined)
  t.equal(defaults(loopback('localhost:3000', 'HTTP://LOCALHOST:3000')), undefined, 'case-insensitive')
})

test('a foreign Origin is refused with MCPGW_ERR_ORIGIN_FORBIDDEN', async (t) => {
  const err = defaults(loopback('localhost:3000', 'https://evil.example.com'))
  t.equal(err?.code, 'MCPGW_ERR_ORIGIN_FORBIDDEN')
  t.equal(err?.statusCode, 403)
  t.equal(err?.message, 'Forbidden: Origin "https://evil.example.com" is not allowed (add it to allowedOrigins)')
  const refused = [
    'http://localhost:3001',
    'http://localhost',
    'http://127.0.0.1:3000',
    'null',
    'file://',
    'ftp://localhost:3000',
    'not a url'
  ]
  for (const origin of refused) {
    t.equal(defaults(loopback('localhost:3000', origin))?.code, 'MCPGW_ERR_ORIGIN_FORBIDDEN', origin)
  }
})

test('the Host check runs before the Origin check', async (t) => {
  t.equal(defaults(loopback('evil.example.com', 'http://evil.example.com'))?.code, 'MCPGW_ERR_HOST_FORBIDDEN')
})

test('allowedOrigins lists extra origins, matched case-insensitively', async (t) => {
  const guard = createRequestGuard({ allowedOrigins: ['https://app.example.com'], allowedHosts: null })
  t.equal(guard(loopback('localhost:3000', 'https://app.example.com')), undefined)
  t.equal(guard(loopback('localhost:3000', 'https://APP.example.com')), undefined)
  t.equal(guard(loopback('localhost:3000', 'http://app.example.com'))?.code, 'MCPGW_ERR_ORIGIN_FORBIDDEN', 'another scheme')
  t.equal(guard(loopback('localhost:3000', 'https://app.example.com:8443'))?.code, 'MCPGW_ERR_ORIGIN_FORBIDDEN', 'another port')
  t.equal(guard(loopback('localhost:3000', 'http://localhost:3000')), undefined, 'same-origin still passes')
})

test('allowedOrigins "*" allows any Origin but does not relax the Host check', async (t) => {
  const guard = createRequestGuard({ allowedOrigins: ['*'], allowedHosts: null })
  t.equal(guard(loopback('localhost:3000', 'https://evil.example.com')), undefined)
  t.equal(guard(loopback('localhost:3000', 'null')), undefined)
  t.equal(guard(loopback('evil.example.com', 'https://evil.example.com'))?.code, 'MCPGW_ERR_HOST_FORBIDDEN')
})
