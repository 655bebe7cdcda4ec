#!/usr/bin/env bash
# Side-by-side comparison of Spur (bin/spurd) and C gearmand with bin/spur-bench.
#
#   bench/compare.sh [-rounds N] COMPARISON...
#
# Comparisons:
#   durable  submit-bg: gearmand + libsqlite3 vs spurd --sync always, plus spurd -q builtin;
#            once with empty uniques (gearmand then keeps overwriting one SQLite row) and once
#            with -unique (a row per job, as libgearman clients' UUIDs give)
#   core     submit-bg (64 and 256 requests in flight per connection), drain, roundtrip (16 B,
#            8 workers), echo: gearmand vs spurd -q builtin
#   sizes    roundtrip with 1 KiB, 64 KiB and 1 MiB payloads: gearmand vs spurd -q builtin
#   idle     submit-bg and roundtrip while 10000 idle connections are held open
#   deploy   what Gearman deployments run, gearmand vs spurd -q builtin; workers write each
#            packet on its own as libgearman's do (-split-writes):
#              sync-4c-50w          4 synchronous clients, a pool of 50 mostly sleeping workers
#              sync-1c-1w           1 synchronous client, 1 worker: its p50/p99 latency
#              echo-floor           16-byte ECHO round trips on 1 connection, window 1: the floor;
#                                   the summary sets sync-1c-1w's p50 against 3 x this p50 of
#                                   the same server (a job with a sleeping worker takes three
#                                   round trips through it: SUBMIT_JOB -> NOOP, GRAB_JOB ->
#                                   JOB_ASSIGN, WORK_COMPLETE -> the client's WORK_COMPLETE)
#              pipelined-4x64-8w    4 clients with 64 foreground jobs in flight each, 8 workers
#              submit-bg-4x64       4 clients with 64 background submits in flight each
#              durable              submit-bg of N_DEPLOY_DURABLE jobs: spurd with its defaults
#                                   (durable, --sync always) and spurd -q builtin (and gearmand,
#                                   in memory); the summary gives the durable/in-memory ratio
#   depth    drain with 20000 and with 1000000 jobs queued (N_DEPTH_SMALL, N_DEPTH_LARGE), and
#            submit-bg of N_DEPTH_SUBMIT (2000000) jobs, and of N_SUBMIT jobs with a distinct unique
#            id each (as libgearman clients send): do the rates hold up as the queue grows?
#   memory   memory workload (N_MEMORY jobs, default 1000000): spurd with its durable default vs
#            gearmand; RSS per queued job, RSS and data-dir size after the drain and after
#            -settle 5s (ROUNDS_MEMORY rounds, default 1)
#   lifecycle  the job lifecycle (epoch jobs, schedules, stored results):
#              epoch-accuracy   N_EPOCH_FIRE (10000) SUBMIT_JOB_EPOCH jobs all due at one whole
#                               second (>= EPOCH_LEAD, 3 s, ahead), 8 workers asleep (PRE_SLEEP)
#                               before it: each job's JOB_ASSIGN arrival minus the due second,
#                               first/p50/p99/last; spurd (defaults) and spurd -q builtin. gearmand
#                               1.1 never wakes sleeping workers when an epoch job comes due, so
#                               it runs with workers polling GRAB_JOB every 100 ms (-poll 100ms),
#                               and once more (1 round, -wait 10s) with sleeping workers, to show
#                               they are never woken
#              scale            one spurd with its defaults on a fresh data dir: N_SCHEDULES
#                               (100000) SUBMIT_JOB_SCHED schedules (minute 0-59, an hour that is
#                               neither the current nor the next), then N_EPOCH_JOBS (1000000)
#                               SUBMIT_JOB_EPOCH jobs a day ahead, pipelined (4 x 64): RSS per
#                               schedule and per epoch job (the schedules are counted only
#                               after the restart, as "show schedules" grows the heap); then
#                               SIGTERM and a restart on the same dir (and a SIGKILL and
#                               another restart): recovery time from
#                               exec until the port accepts and until "status" answers, and RSS
#                               after it; then ROUNDS interleaved rounds of submit-bg
#                               (N_SCALE_BG, 200000, 4 x 64) against a copy of that data dir
#                               (restarted, recovery timed again) and against a fresh spurd; the
#                               summary gives the loaded/fresh ratio (target >= 0.9x)
#              result-store     submit-complete: 4 clients x 64 SUBMIT_JOB_BG in flight while 8
#                               workers GRAB_JOB / WORK_COMPLETE with a 16-byte result, until
#                               N_RESULTS (100000) are completed: spurd with its defaults (results
#                               kept 1 h) vs --result-ttl 0, and spurd -q builtin both ways; the
#                               summary gives each on/off ratio (target >= 0.8x) and server CPU/job
#
# gearmand runs with -t 0 (one thread for everything, its fastest setting). spurd runs with
# its default number of event loops, as it is deployed: no -t unless SPURD_LOOPS is set, which
# then passes -t SPURD_LOOPS to spurd -q builtin (and shows it in the label).
# SPURD_GOMAXPROCS, if set, is spurd -q builtin's GOMAXPROCS (the generator keeps its own).
# The durable, memory and deploy/durable cases run spurd with all its defaults too.
#
# For every workload each server is started fresh per round on a free loopback port with its
# own temporary data directory, in the order A B [C] A B [C] ...; the workload runs against it
# with -pid (server CPU per job, RSS); the server is stopped by PID. At the end a table gives,
# per workload and server, the median jobs/s, the ratio to gearmand, server CPU µs/job, server
# system calls per job (counted with perf stat when perf is installed and allowed to attach;
# "-" otherwise), p50/p99 latency where the workload measures it, and peak RSS.
#
# Counts (environment): N_DURABLE (spurd, default 500000), N_DURABLE_SQLITE (gearmand+sqlite,
# which manages about 1000 fsynced jobs/s, default 20000), N_SUBMIT (1000000), N_DRAIN
# (200000: gearmand's default 991-bucket job hash makes deeper drains slow down), N_ROUNDTRIP
# (100000), N_ECHO (5000000), N_1K (50000), N_64K (10000), N_1M (1000), N_IDLE (10000
# connections); deploy: N_SYNC (the sync cases, 30000), N_ECHO_FLOOR (200000), N_PIPELINED
# (200000), N_BG (1000000), N_DEPLOY_DURABLE (300000: spurd --sync always acknowledges about
# 25000 jobs/s here). TIMEOUT is each run's time limit in seconds (default 120);
# lifecycle: N_EPOCH_FIRE, EPOCH_LEAD (seconds), N_SCHEDULES, N_EPOCH_JOBS, N_SCALE_BG, N_RESULTS.
# GEARMAND_ARGS and SPURD_ARGS add server flags; OUT is the directory for results (default: a
# new temporary directory, kept).
set -euo pipefail

GEARMAND=${GEARMAND:-/usr/sbin/gearmand}
ROUNDS=3
comparisons=()
while [ $# -gt 0 ]; do
	case "$1" in
	-rounds | --rounds)
		ROUNDS=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	durable | core | sizes | idle | memory | depth | deploy | lifecycle)
		comparisons+=("$1")
		shift
		;;
	*)
		echo "compare.sh: unknown argument '$1' (comparisons: durable core sizes idle memory depth deploy lifecycle; -rounds N)" >&2
		exit 2
		;;
	esac
done
if [ ${#comparisons[@]} -eq 0 ]; then
	echo "usage: bench/compare.sh [-rounds N] durable|core|sizes|idle|memory|depth|deploy|lifecycle ..." >&2
	exit 2
fi
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
	echo "compare.sh: -rounds wants a positive integer" >&2
	exit 2
fi
if [ ! -x "$GEARMAND" ]; then
	echo "compare.sh: C gearmand not found at $GEARMAND; install it with: apt-get install gearman-job-server" >&2
	exit 1
fi

N_DURABLE=${N_DURABLE:-500000}
N_DURABLE_SQLITE=${N_DURABLE_SQLITE:-20000}
N_SUBMIT=${N_SUBMIT:-1000000}
N_DRAIN=${N_DRAIN:-200000}
N_ROUNDTRIP=${N_ROUNDTRIP:-100000}
N_ECHO=${N_ECHO:-5000000}
N_1K=${N_1K:-50000}
N_64K=${N_64K:-10000}
N_1M=${N_1M:-1000}
N_IDLE=${N_IDLE:-10000}
N_DEPTH_SMALL=${N_DEPTH_SMALL:-20000}
N_DEPTH_LARGE=${N_DEPTH_LARGE:-1000000}
N_DEPTH_SUBMIT=${N_DEPTH_SUBMIT:-2000000}
N_SYNC=${N_SYNC:-30000}
N_ECHO_FLOOR=${N_ECHO_FLOOR:-200000}
N_PIPELINED=${N_PIPELINED:-200000}
N_BG=${N_BG:-1000000}
N_DEPLOY_DURABLE=${N_DEPLOY_DURABLE:-300000}
SPURD_LOOPS=${SPURD_LOOPS:-}
SPURD_GOMAXPROCS=${SPURD_GOMAXPROCS:-}
N_MEMORY=${N_MEMORY:-1000000}
ROUNDS_MEMORY=${ROUNDS_MEMORY:-1}
N_EPOCH_FIRE=${N_EPOCH_FIRE:-10000}
EPOCH_LEAD=${EPOCH_LEAD:-3}
N_SCHEDULES=${N_SCHEDULES:-100000}
N_EPOCH_JOBS=${N_EPOCH_JOBS:-1000000}
N_SCALE_BG=${N_SCALE_BG:-200000}
N_RESULTS=${N_RESULTS:-100000}
TIMEOUT=${TIMEOUT:-120}
read -r -a gearmand_args <<<"${GEARMAND_ARGS:-}"
read -r -a spurd_args <<<"${SPURD_ARGS:-}"

cd "$(dirname "$0")/.."
echo "== building bin/spurd and bin/spur-bench"
go build -o bin/spurd ./cmd/spurd
go build -o bin/spur-bench ./bench
BENCH=bin/spur-bench

OUT=${OUT:-$(mktemp -d /tmp/spur-compare.XXXXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/spur-compare-data.XXXXXX)
SERVER_PID=""

stop_server() {
	local pid=$SERVER_PID
	SERVER_PID=""
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "   (pid $pid ignored SIGTERM for 10 s: SIGKILL)" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	stop_server
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

label_of() {
	case "$1" in
	gearmand) echo "gearmand" ;;
	gearmand-sqlite) echo "gearmand+sqlite" ;;
	spurd) echo "spurd" ;;
	spurd-always) echo "spurd --sync always" ;;
	spurd-builtin) echo "spurd -q builtin${SPURD_LOOPS:+ -t $SPURD_LOOPS}" ;;
	spurd-noresults) echo "spurd --result-ttl 0" ;;
	spurd-builtin-noresults) echo "spurd -q builtin${SPURD_LOOPS:+ -t $SPURD_LOOPS} --result-ttl 0" ;;
	gearmand-poll) echo "gearmand (workers poll)" ;;
	esac
}

# bench_args_of KIND: generator flags a kind adds to its case's.
bench_args_of() {
	case "$1" in
	gearmand-poll) echo "-poll 100ms" ;;
	esac
}

# start_server KIND DIR: starts a server, sets SERVER_PID and PORT.
start_server() {
	local kind=$1 dir=$2 attempt
	mkdir -p "$dir"
	for attempt in 1 2 3; do
		PORT=$($BENCH freeport)
		case "$kind" in
		gearmand | gearmand-poll)
			"$GEARMAND" -p "$PORT" -L 127.0.0.1 -t 0 -l /dev/null --verbose ERROR ${gearmand_args[@]+"${gearmand_args[@]}"} >"$dir/server.log" 2>&1 &
			;;
		gearmand-sqlite)
			"$GEARMAND" -p "$PORT" -L 127.0.0.1 -t 0 -l /dev/null --verbose ERROR \
				-q libsqlite3 --libsqlite3-db "$dir/q.sqlite" ${gearmand_args[@]+"${gearmand_args[@]}"} >"$dir/server.log" 2>&1 &
			;;
		spurd)
			bin/spurd -p "$PORT" -L 127.0.0.1 --data-dir "$dir/data" ${spurd_args[@]+"${spurd_args[@]}"} >"$dir/server.log" 2>&1 &
			;;
		spurd-noresults)
			bin/spurd -p "$PORT" -L 127.0.0.1 --data-dir "$dir/data" --result-ttl 0 ${spurd_args[@]+"${spurd_args[@]}"} >"$dir/server.log" 2>&1 &
			;;
		spurd-builtin-noresults)
			env ${SPURD_GOMAXPROCS:+GOMAXPROCS=$SPURD_GOMAXPROCS} bin/spurd -p "$PORT" -L 127.0.0.1 -q builtin --result-ttl 0 \
				${SPURD_LOOPS:+-t "$SPURD_LOOPS"} --data-dir "$dir/data" ${spurd_args[@]+"${spurd_args[@]}"} >"$dir/server.log" 2>&1 &
			;;
		spurd-always)
			bin/spurd -p "$PORT" -L 127.0.0.1 --data-dir "$dir/data" --sync always ${spurd_args[@]+"${spurd_args[@]}"} >"$dir/server.log" 2>&1 &
			;;
		spurd-builtin)
			env ${SPURD_GOMAXPROCS:+GOMAXPROCS=$SPURD_GOMAXPROCS} bin/spurd -p "$PORT" -L 127.0.0.1 -q builtin \
				${SPURD_LOOPS:+-t "$SPURD_LOOPS"} --data-dir "$dir/data" ${spurd_args[@]+"${spurd_args[@]}"} >"$dir/server.log" 2>&1 &
			;;
		esac
		SERVER_PID=$!
		if $BENCH waitport -addr "127.0.0.1:$PORT" -timeout 15s 2>/dev/null && kill -0 "$SERVER_PID" 2>/dev/null; then
			return 0
		fi
		echo "   $kind did not start on port $PORT (attempt $attempt):" >&2
		sed 's/^/     /' "$dir/server.log" >&2 || true
		stop_server
	done
	echo "compare.sh: cannot start $kind" >&2
	exit 1
}

# data_dir KIND DIR: the directory holding the server's queue (for -datadir).
data_dir() {
	case "$1" in
	gearmand-sqlite) echo "$2" ;;
	spurd*) echo "$2/data" ;;
	*) echo "" ;;
	esac
}

# record ROUND LABEL WORKLOAD CASE RC OUTPUT: prints a run's lines and appends its JSON result
# (or a failure record) to results.jsonl.
record() {
	local round=$1 label=$2 workload=$3 case=$4 rc=$5 out=$6
	printf '%s\n' "$out" | grep -v '^{' | sed "s/^/   r$round /" || true
	if grep '^{' <<<"$out" >/dev/null; then
		printf '%s\n' "$out" | grep '^{' >>"$OUT/results.jsonl"
	else
		echo "   r$round $label: spur-bench exited $rc without a result" >&2
		printf '{"workload":"%s","case":"%s","label":"%s","ok":false,"failure":"exit %s"}\n' \
			"$workload" "$case" "$label" "$rc" >>"$OUT/results.jsonl"
	fi
}

# run_case CASE WORKLOAD "ARGS" KIND[:N]...: ROUNDS rounds (CASE_ROUNDS, if set) over the
# servers, in turn; a kind's :N suffix is its -n.
run_case() {
	local case=$1 workload=$2 args=$3
	shift 3
	local kinds=("$@") round spec kind n dir label rc out dd rounds=${CASE_ROUNDS:-$ROUNDS}
	[ "$workload" = memory ] && rounds=$ROUNDS_MEMORY
	echo "== $case: $workload $args ($rounds rounds: ${kinds[*]})"
	for round in $(seq 1 "$rounds"); do
		for spec in "${kinds[@]}"; do
			kind=${spec%%:*}
			n=""
			if [ "$kind" != "$spec" ]; then n="-n ${spec#*:}"; fi
			dir="$WORK/${case//\//_}-$kind-$round"
			label=$(label_of "$kind")
			start_server "$kind" "$dir"
			dd=$(data_dir "$kind" "$dir")
			if [ "$workload" = memory ] && [ -n "$dd" ]; then n="$n -datadir $dd"; fi
			rc=0
			# shellcheck disable=SC2086 # ARGS is a word list
			out=$(timeout -k 10 $((TIMEOUT * 3 + 60)) "$BENCH" "$workload" -addr "127.0.0.1:$PORT" -pid "$SERVER_PID" \
				-timeout "${TIMEOUT}s" -json -label "$label" -case "$case" $args $(bench_args_of "$kind") $n 2>&1) || rc=$?
			stop_server
			record "$round" "$label" "$workload" "$case" "$rc" "$out"
			rm -rf "$dir"
		done
	done
}

# bench_run ROUND LABEL CASE WORKLOAD ARGS...: runs WORKLOAD against the server on PORT
# (SERVER_PID) and records its result.
bench_run() {
	local round=$1 label=$2 case=$3 workload=$4 rc=0 out
	shift 4
	out=$(timeout -k 10 $((TIMEOUT * 3 + 60)) "$BENCH" "$workload" -addr "127.0.0.1:$PORT" -pid "$SERVER_PID" \
		-timeout "${TIMEOUT}s" -json -label "$label" -case "$case" "$@" 2>&1) || rc=$?
	record "$round" "$label" "$workload" "$case" "$rc" "$out"
}

# restart_timed DIR ROUND LABEL: starts spurd (its defaults) on the data dir DIR/data that
# lifecycle_scale filled and times its start with the recovery workload: from just before the
# exec until the port accepts, and until "status" answers; checks the jobs and schedules.
restart_timed() {
	local dir=$1 round=$2 label=$3 t0 rc=0 out
	PORT=$($BENCH freeport)
	t0=$(date +%s%N)
	bin/spurd -p "$PORT" -L 127.0.0.1 --data-dir "$dir/data" ${spurd_args[@]+"${spurd_args[@]}"} >>"$dir/server.log" 2>&1 &
	SERVER_PID=$!
	out=$(timeout -k 10 $((TIMEOUT + 60)) "$BENCH" recovery -addr "127.0.0.1:$PORT" -pid "$SERVER_PID" -start "$t0" \
		-timeout "${TIMEOUT}s" -json -label "$label" -case lifecycle/scale-recovery -fn lifecycle-epoch \
		-n "$N_EPOCH_JOBS" -sched-fn lifecycle-sched -schedules "$N_SCHEDULES" 2>&1) || rc=$?
	record "$round" "$label" recovery lifecycle/scale-recovery "$rc" "$out"
}

LOADED_LABEL="spurd +${N_SCHEDULES} sched +${N_EPOCH_JOBS} epoch"

# lifecycle_scale: schedules and epoch jobs at scale in one spurd with its defaults, its restart,
# and submit-bg alongside them against a fresh spurd.
lifecycle_scale() {
	local dir="$WORK/lifecycle-scale" round copy fresh
	echo "== lifecycle/scale: $N_SCHEDULES schedules, then $N_EPOCH_JOBS epoch jobs a day ahead, in one spurd (defaults)"
	start_server spurd "$dir"
	bench_run 1 spurd lifecycle/scale-schedules sched-fill -n "$N_SCHEDULES" -fn lifecycle-sched -datadir "$dir/data" -settle 5s \
		-no-list # counted after the restart: listing 100000 schedules grows the heap the epoch fill starts from
	bench_run 1 spurd lifecycle/scale-epoch-jobs epoch-fill -n "$N_EPOCH_JOBS" -fn lifecycle-epoch -datadir "$dir/data" -settle 5s
	stop_server # SIGTERM
	echo "== lifecycle/scale-recovery: restart on the same data dir after SIGTERM, then after SIGKILL"
	restart_timed "$dir" 1 "spurd after SIGTERM"
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
	restart_timed "$dir" 1 "spurd after SIGKILL"
	stop_server
	echo "== lifecycle/submit-bg-alongside: submit-bg -n $N_SCALE_BG -conns 4 -window 64 ($ROUNDS rounds: a copy of that data dir, restarted; a fresh spurd)"
	for round in $(seq 1 "$ROUNDS"); do
		copy="$WORK/lifecycle-loaded-$round"
		mkdir -p "$copy"
		cp -a "$dir/data" "$copy/data"
		restart_timed "$copy" "$round" "spurd on a copy (round $round)"
		bench_run "$round" "$LOADED_LABEL" lifecycle/submit-bg-alongside submit-bg -n "$N_SCALE_BG" -conns 4 -window 64
		stop_server
		rm -rf "$copy"
		fresh="$WORK/lifecycle-fresh-$round"
		start_server spurd "$fresh"
		bench_run "$round" "spurd fresh" lifecycle/submit-bg-alongside submit-bg -n "$N_SCALE_BG" -conns 4 -window 64
		stop_server
		rm -rf "$fresh"
	done
	rm -rf "$dir"
}

echo "== machine: $(nproc) CPUs shared by the generator and the server; results in $OUT/results.jsonl"
for cmp in "${comparisons[@]}"; do
	case "$cmp" in
	durable)
		run_case durable/submit-bg submit-bg "" \
			"gearmand-sqlite:$N_DURABLE_SQLITE" "spurd-always:$N_DURABLE" "spurd-builtin:$N_DURABLE"
		run_case durable/submit-bg-unique submit-bg "-unique" \
			"gearmand-sqlite:$N_DURABLE_SQLITE" "spurd-always:$N_DURABLE" "spurd-builtin:$N_DURABLE"
		;;
	core)
		run_case core/submit-bg submit-bg "-n $N_SUBMIT" gearmand spurd-builtin
		run_case core/submit-bg-w256 submit-bg "-n $N_SUBMIT -window 256" gearmand spurd-builtin
		run_case core/drain drain "-n $N_DRAIN" gearmand spurd-builtin
		run_case core/roundtrip-16B-8w roundtrip "-n $N_ROUNDTRIP -size 16 -workers 8" gearmand spurd-builtin
		run_case core/echo echo "-n $N_ECHO" gearmand spurd-builtin
		;;
	sizes)
		run_case sizes/roundtrip-1KiB roundtrip "-n $N_1K -size 1024 -workers 8" gearmand spurd-builtin
		run_case sizes/roundtrip-64KiB roundtrip "-n $N_64K -size 65536 -workers 8" gearmand spurd-builtin
		run_case sizes/roundtrip-1MiB roundtrip "-n $N_1M -size 1048576 -workers 8" gearmand spurd-builtin
		;;
	memory)
		run_case memory/1M memory "-n $N_MEMORY -settle 5s" spurd gearmand
		;;
	depth)
		run_case depth/drain-20k drain "-n $N_DEPTH_SMALL" gearmand spurd-builtin
		run_case depth/drain-1M drain "-n $N_DEPTH_LARGE" gearmand spurd-builtin
		run_case depth/submit-bg-2M submit-bg "-n $N_DEPTH_SUBMIT" gearmand spurd-builtin
		run_case depth/submit-bg-unique submit-bg "-n $N_SUBMIT -unique" gearmand spurd-builtin
		;;
	deploy)
		run_case deploy/sync-4c-50w roundtrip "-n $N_SYNC -conns 4 -window 1 -workers 50 -split-writes" gearmand spurd-builtin
		run_case deploy/sync-1c-1w roundtrip "-n $N_SYNC -conns 1 -window 1 -workers 1 -split-writes" gearmand spurd-builtin
		run_case deploy/echo-floor echo "-n $N_ECHO_FLOOR -conns 1 -window 1 -size 16" gearmand spurd-builtin
		run_case deploy/pipelined-4x64-8w roundtrip "-n $N_PIPELINED -conns 4 -window 64 -workers 8 -split-writes" gearmand spurd-builtin
		run_case deploy/submit-bg-4x64 submit-bg "-n $N_BG -conns 4 -window 64" gearmand spurd-builtin
		run_case deploy/durable submit-bg "-n $N_DEPLOY_DURABLE -conns 4 -window 64" gearmand spurd spurd-builtin
		;;
	lifecycle)
		run_case lifecycle/epoch-accuracy epoch-accuracy "-n $N_EPOCH_FIRE -workers 8 -lead ${EPOCH_LEAD}s -wait 30s" \
			spurd spurd-builtin gearmand-poll
		CASE_ROUNDS=1 run_case lifecycle/epoch-accuracy-sleeping epoch-accuracy "-n $N_EPOCH_FIRE -workers 8 -lead ${EPOCH_LEAD}s -wait 10s" \
			gearmand
		lifecycle_scale
		run_case lifecycle/result-store submit-complete "-n $N_RESULTS -conns 4 -window 64 -workers 8 -result-size 16 -show-result" \
			spurd spurd-noresults spurd-builtin spurd-builtin-noresults
		;;
	idle)
		run_case idle/submit-bg submit-bg "-n $N_SUBMIT -idle $N_IDLE" gearmand spurd-builtin
		run_case idle/roundtrip-16B-8w roundtrip "-n $N_ROUNDTRIP -size 16 -workers 8 -idle $N_IDLE" gearmand spurd-builtin
		;;
	esac
done

echo
echo "== summary (median of the rounds; ratio = server's median rate / gearmand's; $(nproc) CPUs shared with the generator)"
for cmp in "${comparisons[@]}"; do
	summary_args=(-baseline gearmand)
	case "$cmp" in
	durable) summary_args=(-baseline "gearmand+sqlite") ;;
	lifecycle)
		summary_args+=(-ratio "lifecycle/submit-bg-alongside:$LOADED_LABEL:spurd fresh"
			-ratio "lifecycle/result-store:$(label_of spurd):$(label_of spurd-noresults)"
			-ratio "lifecycle/result-store:$(label_of spurd-builtin):$(label_of spurd-builtin-noresults)")
		;;
	deploy)
		summary_args+=(-floor "deploy/sync-1c-1w:deploy/echo-floor:3"
			-ratio "deploy/durable:$(label_of spurd):$(label_of spurd-builtin)")
		;;
	esac
	grep "\"case\":\"$cmp/" "$OUT/results.jsonl" | $BENCH summarize "${summary_args[@]}" || true
	echo
done
echo "raw results: $OUT/results.jsonl"
