// Scale-bench helper: what a process costs, read from Linux's /proc — resident memory, open file descriptors (each
// socket is one), its fd limit, and the CPU time it has used. Every reader returns null once the process is gone,
// so a measurement of a dead child reads as "no figure" rather than throwing mid-report.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/** Clock ticks per second of utime/stime; 100 on practically every Linux, asked once in case it is not. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** Resident set size in bytes (VmRSS). */
export function rss (pid) {
  const kb = gone(() => /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  return kb == null ? null : Number(kb) * 1024
}

export function openFds (pid) {
  return gone(() => readdirSync(`/proc/${pid}/fd`).length)
}

/** The soft limit on open files, which is where accept() and connect() start failing with EMFILE. */
export function fdLimit (pid) {
  const soft = gone(() => /^Max open files\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1])
  return soft == null || soft === 'unlimited' ? null : Number(soft)
}

/** CPU seconds used so far, user + system (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuSeconds (pid) {
  return gone(() => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  })
}

/** The fds, RSS and CPU of a process at one moment. */
export function snapshot (pid) {
  return { fds: openFds(pid), rss: rss(pid), cpu: cpuSeconds(pid) }
}

function gone (read) {
  try {
    return read()
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ESRCH') return null
    throw err
  }
}
