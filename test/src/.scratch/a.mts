import { SseParser } from '../../../src/sse.js'
import { toRpcError } from '../../../src/errors.js'
const ev: unknown[] = []
const p = new SseParser(e => ev.push(e))
p.push('data: a\r'); p.end(); console.log(JSON.stringify(ev))
try { console.log(toRpcError(null)) } catch (e) { console.log('threw', e) }
try { console.log(toRpcError(undefined)) } catch (e) { console.log('threw', e) }
console.log(toRpcError('boom'), toRpcError(new Error('x')), toRpcError({ code: 'ENOENT', message: 'm' }))
