<?php
// Interop test worker for the PECL gearman extension.
//
// Usage: php worker.php HOST:PORT[,HOST:PORT...] MAXJOBS FUNCTION=BEHAVIOUR [FUNCTION=BEHAVIOUR ...]
//
// With several servers (a cluster) the worker is connected to each of them (addServers).
//
// Registers every FUNCTION with the given BEHAVIOUR and serves at most MAXJOBS
// jobs (or until IDLE_DEADLINE seconds of wall time have passed), then exits.
// Every line printed to stdout is flushed immediately; the Go test parses them:
//
//   READY                                   functions registered, entering work()
//   START <fn> <handle> <unique> <workload> a job was assigned
//   END <fn> <handle>                       the callback returned
//   EXIT <jobs>                             leaving normally
//
// Behaviours:
//   reverse   return strrev(workload)
//   upper     return strtoupper(workload)
//   steps     sendData("d1:<w>"), sendWarning("w1:<w>"), sendStatus(1,2),
//             sendData("d2:<w>"), sendStatus(2,2), return "done:<w>"
//   fail      $job->sendFail(), return ""
//   failret   $job->setReturn(GEARMAN_WORK_FAIL), return ""
//   exception $job->sendException("boom:<w>"), return ""
//   status    sendStatus(1,4), print "STATUS_SENT <handle>", wait for $RELEASE_FILE,
//             sendStatus(4,4), return "status-done"
//   hold      wait for $RELEASE_FILE, return "held:<w>"
//   die       print "DYING <handle>" and SIGKILL itself in the middle of the job,
//             so the server sees the connection drop while the job is assigned
//
// Environment: RELEASE_FILE (path polled by "status"/"hold"), IDLE_DEADLINE
// (seconds, default 25), WORKER_ID (printed in START lines' prefix if set).

if ($argc < 4) {
    fwrite(STDERR, "usage: worker.php HOST:PORT MAXJOBS FN=BEHAVIOUR...\n");
    exit(2);
}
$server = $argv[1];
$maxJobs = (int)$argv[2];
$deadline = microtime(true) + (float)(getenv('IDLE_DEADLINE') ?: 25);
$release = getenv('RELEASE_FILE') ?: '';

function out($line) {
    fwrite(STDOUT, $line . "\n");
    fflush(STDOUT);
}

function wait_release($release) {
    $until = microtime(true) + 20;
    while ($release !== '' && !file_exists($release)) {
        if (microtime(true) > $until) {
            out("RELEASE_TIMEOUT");
            return false;
        }
        usleep(10000);
    }
    return true;
}

$jobs = 0;

$w = new GearmanWorker();
if (strpos($server, ',') !== false) {
    $w->addServers($server);
} else {
    $w->addServer(...explode(':', $server));
}
$w->setTimeout(200); // ms; work() returns with GEARMAN_TIMEOUT when idle

for ($i = 3; $i < $argc; $i++) {
    list($fn, $behaviour) = explode('=', $argv[$i], 2);
    $cb = function (GearmanJob $job) use ($behaviour, $release, &$jobs) {
        $jobs++;
        $w = $job->workload();
        $fn = $job->functionName();
        $h = $job->handle();
        out("START $fn $h " . $job->unique() . " $w");
        $ret = "";
        switch ($behaviour) {
        case 'reverse':
            $ret = strrev($w);
            break;
        case 'upper':
            $ret = strtoupper($w);
            break;
        case 'steps':
            $job->sendData("d1:$w");
            $job->sendWarning("w1:$w");
            $job->sendStatus(1, 2);
            $job->sendData("d2:$w");
            $job->sendStatus(2, 2);
            $ret = "done:$w";
            break;
        case 'fail':
            $job->sendFail();
            break;
        case 'failret':
            $job->setReturn(GEARMAN_WORK_FAIL);
            break;
        case 'exception':
            $job->sendException("boom:$w");
            break;
        case 'status':
            $job->sendStatus(1, 4);
            out("STATUS_SENT $h");
            wait_release($release);
            $job->sendStatus(4, 4);
            $ret = "status-done";
            break;
        case 'hold':
            wait_release($release);
            $ret = "held:$w";
            break;
        case 'die':
            // A real crash: exit() would be caught by the extension, which
            // then reports WORK_EXCEPTION "Unable to add worker function"
            // instead of dropping the connection.
            out("DYING $h");
            posix_kill(getmypid(), SIGKILL);
            sleep(10);
            exit(3);
        default:
            out("UNKNOWN_BEHAVIOUR $behaviour");
            exit(2);
        }
        out("END $fn $h");
        return $ret;
    };
    if (!$w->addFunction($fn, $cb)) {
        out("ADDFUNCTION_FAILED $fn " . $w->error());
        exit(1);
    }
}

out("READY");
while ($jobs < $maxJobs && microtime(true) < $deadline) {
    if (@$w->work()) {
        continue;
    }
    $rc = $w->returnCode();
    if ($rc == GEARMAN_TIMEOUT || $rc == GEARMAN_IO_WAIT || $rc == GEARMAN_NO_JOBS
        || $rc == GEARMAN_WORK_FAIL || $rc == GEARMAN_WORK_EXCEPTION) {
        // Idle timeout, or the job just served was reported as failed.
        continue;
    }
    out("WORK_ERROR $rc " . $w->error());
    exit(1);
}
out("EXIT $jobs");
