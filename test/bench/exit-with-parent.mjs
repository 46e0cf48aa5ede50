// Bench helper, preloaded (`node --import`) into the gateway child: if the bench dies without stopping it, the IPC
// channel closes and the gateway shuts down as on SIGTERM, instead of being left listening.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'))
