'use strict'
// Interop test client for the npm "gearman" package (node-gearman 2.1.0).
//
// Usage: node client.js HOST PORT COMMAND ARGS...
//
//   do PRIO FN WORKLOAD   foreground submitJob with priority normal|high|low:
//                         CREATED <handle>, then per WORK_* packet for it
//                         DATA <payload> | STATUS <n>/<d> | RESULT <payload> | FAIL
//   bg PRIO FN ARG...     one background submitJob per ARG, in order:
//                         HANDLE <handle> for each JOB_CREATED
//   status HANDLE         getJobStatus: STATUS <known> <running> <numerator>
//                         (the package decodes the denominator as one byte, so it
//                         is not printed)
//
// Every command ends with "OK"; a server ERROR packet prints ERROR <code> <text>
// and exits 1; nothing within 20 s prints TIMEOUT and exits 1.
const gearman = require('gearman')

const [host, port, cmd, ...args] = process.argv.slice(2)
const client = gearman(host, Number(port))

const out = (line) => process.stdout.write(line + '\n')
const finish = (code) => {
  if (code === 0) out('OK')
  client.close()
  process.exitCode = code
  clearTimeout(timer)
}
const timer = setTimeout(() => { out('TIMEOUT'); process.exit(1) }, 20000)

client.on('error', (err) => { out('SOCKET_ERROR ' + err.message); process.exit(1) })
client.on('ERROR', (code, text) => { out('ERROR ' + code + ' ' + text); finish(1) })

client.connect(() => {
  if (cmd === 'do') {
    const [priority, fn, workload] = args
    let handle = null
    client.on('JOB_CREATED', (h) => { handle = h; out('CREATED ' + h) })
    client.on('WORK_DATA', (j) => { if (j.handle === handle) out('DATA ' + j.payload.toString()) })
    client.on('WORK_STATUS', (j) => { if (j.handle === handle) out('STATUS ' + j.percent_num + '/' + j.percent_den) })
    client.on('WORK_COMPLETE', (j) => { if (j.handle === handle) { out('RESULT ' + j.payload.toString()); finish(0) } })
    client.on('WORK_FAIL', (j) => { if (j.handle === handle) { out('FAIL'); finish(0) } })
    client.submitJob(fn, workload, { priority })
  } else if (cmd === 'bg') {
    const [priority, fn, ...workloads] = args
    let created = 0
    client.on('JOB_CREATED', (h) => {
      out('HANDLE ' + h)
      if (++created === workloads.length) finish(0)
    })
    for (const w of workloads) client.submitJob(fn, w, { priority, background: true })
  } else if (cmd === 'status') {
    client.on('STATUS_RES', (s) => {
      out('STATUS ' + s.known + ' ' + s.running + ' ' + s.percent_done_num)
      finish(0)
    })
    client.getJobStatus(args[0])
  } else {
    out('BAD_COMMAND ' + cmd)
    finish(2)
  }
})
