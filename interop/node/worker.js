'use strict'
// Interop test worker for the npm "gearman" package (node-gearman 2.1.0).
//
// Usage: node worker.js HOST PORT MAXJOBS FN=BEHAVIOUR [FN=BEHAVIOUR ...]
//
// Registers every FN (CAN_DO), then loops GRAB_JOB -> JOB_ASSIGN -> result ->
// GRAB_JOB, and PRE_SLEEP on NO_JOB until a NOOP. Exits after MAXJOBS jobs or
// 25 s. Output lines:
//   READY                              connected and registered
//   START <fn> <handle> <workload>     a job was assigned
//   EXIT <jobs>
// Behaviours:
//   reverse  WORK_COMPLETE with the workload reversed
//   parts    WORK_DATA "part1", WORK_STATUS 1/2, WORK_DATA "part2",
//            WORK_STATUS 2/2, WORK_COMPLETE "done:<workload>"
//   fail     WORK_FAIL
const gearman = require('gearman')

const [host, port, maxJobs, ...specs] = process.argv.slice(2)
const behaviours = new Map(specs.map((s) => s.split('=', 2)))
const worker = gearman(host, Number(port))
let jobs = 0

const out = (line) => process.stdout.write(line + '\n')
const stop = () => {
  out('EXIT ' + jobs)
  worker.close()
  clearTimeout(timer)
}
const timer = setTimeout(stop, 25000)

worker.on('error', (err) => { out('SOCKET_ERROR ' + err.message); process.exit(1) })
worker.on('ERROR', (code, text) => { out('ERROR ' + code + ' ' + text); process.exit(1) })
worker.on('NOOP', () => worker.grabJob())
worker.on('NO_JOB', () => worker.preSleep())
worker.on('JOB_ASSIGN', (job) => {
  jobs++
  const w = job.payload.toString()
  out('START ' + job.func_name + ' ' + job.handle + ' ' + w)
  switch (behaviours.get(job.func_name)) {
    case 'reverse':
      worker.sendWorkComplete(job.handle, w.split('').reverse().join(''))
      break
    case 'parts':
      worker.sendWorkData(job.handle, 'part1')
      worker.sendWorkStatus(job.handle, '1', '2')
      worker.sendWorkData(job.handle, 'part2')
      worker.sendWorkStatus(job.handle, '2', '2')
      worker.sendWorkComplete(job.handle, 'done:' + w)
      break
    case 'fail':
      worker.sendWorkFail(job.handle)
      break
    default:
      out('UNKNOWN_BEHAVIOUR ' + job.func_name)
      process.exit(2)
  }
  if (jobs >= Number(maxJobs)) stop()
  else worker.grabJob()
})

worker.connect(() => {
  for (const fn of behaviours.keys()) worker.addFunction(fn)
  out('READY')
  worker.grabJob()
})
