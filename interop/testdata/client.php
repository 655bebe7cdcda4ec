<?php
// Interop test client for the PECL gearman extension.
//
// Usage: php client.php HOST:PORT[,HOST:PORT...] COMMAND ARGS...
//
// With several servers (a cluster) the client picks among them as libgearman does (addServers).
//
// Commands and their output (one line per event, flushed immediately):
//
//   do normal|high|low FN WORKLOAD [UNIQUE]
//       -> RESULT <returnCode> <result>
//       (WORKLOAD "@/path" reads the workload from that file)
//   bg normal|high|low FN WORKLOAD [WORKLOAD...]
//       -> HANDLE <returnCode> <handle>     (one per workload, in order)
//   ping DATA
//       -> PING <ok 0|1> <returnCode>     (ECHO_REQ; libgearman checks the echo)
//   status HANDLE
//       -> STATUS <known> <running> <numerator> <denominator>
//   tasks [--exception-cb] [--unique=U] FN WORKLOAD [WORKLOAD...]
//       addTask() for every workload, then runTasks(); callbacks print
//       CREATED <workload> <handle>
//       DATA <workload> <data>
//       WARNING <workload> <data>
//       STATUS <workload> <numerator>/<denominator>
//       COMPLETE <workload> <data>
//       FAIL <workload>
//       EXCEPTION <workload> <data>
//       and finally RUNTASKS <ok 0|1> <returnCode>
//
// Every command ends with a line "OK" when the script ran to its end.

if ($argc < 3) {
    fwrite(STDERR, "usage: client.php HOST:PORT COMMAND ARGS...\n");
    exit(2);
}

function out($line) {
    fwrite(STDOUT, $line . "\n");
    fflush(STDOUT);
}

$c = new GearmanClient();
if (strpos($argv[1], ',') !== false) {
    // Without the extension's OPTION_REQ "exceptions" to each server: libgearman leaves
    // its "ready" mark on a connection whose OPTION_RES needed a poll(), and a later
    // doNormal() then blocks reading that connection while its result waits, unread, on
    // another one, until GEARMAN_TIMEOUT. It happens against gearmand as well, whenever an
    // answer is slower than the client's first read (README, "Known client issues").
    $c->addServers($argv[1], false);
} else {
    list($host, $port) = explode(':', $argv[1]);
    $c->addServer($host, (int)$port);
}
$c->setTimeout(20000);

$cmd = $argv[2];
$args = array_slice($argv, 3);

switch ($cmd) {
case 'do':
    list($prio, $fn, $workload) = $args;
    $unique = isset($args[3]) ? $args[3] : null;
    if (substr($workload, 0, 1) === '@') {
        $workload = file_get_contents(substr($workload, 1));
    }
    switch ($prio) {
    case 'normal': $r = $c->doNormal($fn, $workload, $unique); break;
    case 'high':   $r = $c->doHigh($fn, $workload, $unique); break;
    case 'low':    $r = $c->doLow($fn, $workload, $unique); break;
    default: out("BAD_PRIORITY $prio"); exit(2);
    }
    out("RESULT " . $c->returnCode() . " " . $r);
    break;

case 'bg':
    $prio = array_shift($args);
    $fn = array_shift($args);
    foreach ($args as $workload) {
        switch ($prio) {
        case 'normal': $h = $c->doBackground($fn, $workload); break;
        case 'high':   $h = $c->doHighBackground($fn, $workload); break;
        case 'low':    $h = $c->doLowBackground($fn, $workload); break;
        default: out("BAD_PRIORITY $prio"); exit(2);
        }
        out("HANDLE " . $c->returnCode() . " " . $h);
    }
    break;

case 'ping':
    $ok = $c->ping($args[0]);
    out("PING " . ($ok ? 1 : 0) . " " . $c->returnCode());
    break;

case 'status':
    $s = $c->jobStatus($args[0]);
    if (!is_array($s)) {
        out("STATUS_ERROR " . $c->returnCode() . " " . $c->error());
        exit(1);
    }
    out(sprintf("STATUS %d %d %d %d", $s[0] ? 1 : 0, $s[1] ? 1 : 0, $s[2], $s[3]));
    break;

case 'tasks':
    $unique = null;
    $exceptionCb = false;
    while ($args && substr($args[0], 0, 2) === '--') {
        $opt = array_shift($args);
        if ($opt === '--exception-cb') {
            $exceptionCb = true;
        } elseif (substr($opt, 0, 9) === '--unique=') {
            $unique = substr($opt, 9);
        } else {
            out("BAD_OPTION $opt");
            exit(2);
        }
    }
    $fn = array_shift($args);
    $c->setCreatedCallback(function ($t, $ctx) {
        out("CREATED $ctx " . $t->jobHandle());
    });
    $c->setDataCallback(function ($t, $ctx) {
        out("DATA $ctx " . $t->data());
    });
    $c->setWarningCallback(function ($t, $ctx) {
        out("WARNING $ctx " . $t->data());
    });
    $c->setStatusCallback(function ($t, $ctx) {
        out("STATUS $ctx " . $t->taskNumerator() . "/" . $t->taskDenominator());
    });
    $c->setCompleteCallback(function ($t, $ctx) {
        out("COMPLETE $ctx " . $t->data());
    });
    $c->setFailCallback(function ($t, $ctx) {
        out("FAIL $ctx");
    });
    if ($exceptionCb) {
        $c->setExceptionCallback(function ($t, $ctx) {
            out("EXCEPTION $ctx " . $t->data());
        });
    }
    foreach ($args as $workload) {
        $t = $c->addTask($fn, $workload, $workload, $unique);
        if ($t === false) {
            out("ADDTASK_FAILED " . $c->returnCode() . " " . $c->error());
            exit(1);
        }
    }
    $ok = $c->runTasks();
    out("RUNTASKS " . ($ok ? 1 : 0) . " " . $c->returnCode());
    break;

default:
    out("BAD_COMMAND $cmd");
    exit(2);
}
out("OK");
