// Bench helper: a redis-server for `BENCH_RATE_LIMIT=redis`, on a free loopback port with no persistence. Reports
// { port } over IPC once Redis accepts connections; stops Redis when told to stop or when the bench goes away.
import { spawn } from 'node:child_process'
import { freePort } from './children.mjs'

const port = await freePort()
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
  stdio: ['ignore', 'pipe', 'inherit']
})
redis.on('error', (err) => {
  console.error(`redis-server could not start (${err.message}): apt-get install -y redis-server`)
  process.exit(1)
})
let out = ''
redis.stdout.setEncoding('utf8').on('data', (chunk) => {
  out += chunk
  if (out.includes('Ready to accept connections')) {
    out = ''
    process.send?.({ port })
  }
})
const stop = () => { redis.kill('SIGTERM') }
process.once('SIGTERM', stop)
process.once('disconnect', stop)
redis.once('exit', (code) => process.exit(code ?? 0))
