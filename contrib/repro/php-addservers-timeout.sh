#!/usr/bin/env bash
# Shows a libgearman client fault that gearmand shares with Spur (README, "Known client
# issues"): PHP GearmanClient::addServers() with several servers sends each one an
# OPTION_REQ "exceptions"; when an answer is not there at the client's first read, a later
# doNormal() can block on the wrong connection until its timeout (RESULT 47,
# GEARMAN_TIMEOUT), though the server delivered the WORK_COMPLETE.
#
# Usage: contrib/repro/php-addservers-timeout.sh [CLIENTS] [SERVER-COMMAND]
#   SERVER-COMMAND is run with " -p PORT" appended, three times (default: gearmand on
#   loopback, in memory; e.g. "bin/spurd -L 127.0.0.1 -q builtin" for Spur).
# Needs php-cli, php-gearman and the server. Runs at most about 10 minutes; prints the count
# of clients answered and timed out. Add "false" as addServers()' second argument in the
# client below to see every client answered.
set -euo pipefail
clients=${1:-300}
server=${2:-"gearmand -L 127.0.0.1 -q builtin --log-file=none -t 2"}
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

cat >"$dir/client.php" <<'PHP'
<?php
$c = new GearmanClient();
$c->addServers($argv[1]);
$c->setTimeout(3000);
$r = $c->doNormal("reverse", "hello");
echo $c->returnCode(), " ", $r, "\n";
PHP
cat >"$dir/worker.php" <<'PHP'
<?php
$w = new GearmanWorker();
$w->addServers($argv[1]);
$w->addFunction("reverse", function ($j) { return strrev($j->workload()); });
$w->setTimeout(1000);
for ($end = time() + 600; time() < $end;) { @$w->work(); }
PHP

list=""
for i in 1 2 3; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $server -p "$port" & pids+=($!)
  list+="${list:+,}127.0.0.1:$port"
done
sleep 1
timeout 600 php "$dir/worker.php" "$list" & pids+=($!)
sleep 1
timeout 600 sh -c 'while :; do :; done' & pids+=($!) # load: answers come a little later
answered=0 timedout=0
for i in $(seq 1 "$clients"); do
  case "$(timeout 10 php "$dir/client.php" "$list" 2>/dev/null)" in
  "0 olleh") answered=$((answered + 1)) ;;
  *) timedout=$((timedout + 1)) ;;
  esac
done
echo "clients $clients: answered $answered, timed out $timedout"
