// Bench helper: an OTLP/HTTP endpoint for `BENCH_TRACING=1` that takes every export (200, body read and dropped) and
// counts the requests, so the gateway's tracing costs what exporting costs. Reports { port } over IPC.
import { createServer } from 'node:http'

let exports = 0
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    exports++
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
  })
})
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }))
process.on('message', (message) => { if (message === 'count') process.send?.({ exports }) })
const stop = () => server.close(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('disconnect', stop)
