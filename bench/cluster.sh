#!/usr/bin/env bash
# The shared PostgreSQL store against gearmand's own PostgreSQL queue, on one PostgreSQL
# server started here (initdb in a temporary directory, as the postgres user, on a loopback
# port; fsync and synchronous_commit on: acknowledged means on disk).
#
#   bench/cluster.sh [-rounds N] [CASE...]
#
# Cases (all by default):
#   submit      durable background submit, 4 connections x 64 in flight (spur-bench
#               submit-bg -unique: a row per job, as libgearman clients' UUIDs give):
#               gearmand -q libpq (N_LIBPQ jobs), spurd -q postgres with 1 node (N_PG), and
#               with 3 nodes (one spur-bench per node at once, N_PG/3 each; the rate is the
#               sum)
#   complete    submit-complete across 3 nodes: one spur-bench whose 12 clients (64 in
#               flight each) and 24 workers go round the nodes (-addr A,B,C), N_PG jobs:
#               submitted, committed, claimed, run and deleted
#   drain       N_DRAIN jobs submitted through one node with no worker anywhere (each is
#               left for any node), then 24 workers round the 3 nodes drain them
#               (spur-bench drain -queued)
#   soak        SOAK seconds (default 600) of submit-complete on 3 nodes; the jobs table's
#               rows inserted, updated and deleted per second, its largest count of dead
#               tuples and the autovacuum runs (vacuum pressure), from pg_stat_user_tables
#
# Each line gives jobs/s, the spurd nodes' (or gearmand's) CPU per job and PostgreSQL's. Counts
# (environment): N_LIBPQ (gearmand, which commits each job on its own: default 3000), N_PG
# (60000), N_DRAIN (60000), SOAK (600), TIMEOUT (seconds per run, 300). OUT keeps the JSON
# and the servers' logs. PGOPTS adds PostgreSQL settings (e.g. "-c autovacuum_naptime=10s").
set -euo pipefail

GEARMAND=${GEARMAND:-/usr/sbin/gearmand}
ROUNDS=1
cases=()
while [ $# -gt 0 ]; do
	case "$1" in
	-rounds) ROUNDS=$2; shift 2 ;;
	submit | complete | drain | soak) cases+=("$1"); shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "cluster.sh: unknown argument '$1' (cases: submit complete drain soak; -rounds N)" >&2; exit 2 ;;
	esac
done
[ ${#cases[@]} -gt 0 ] || cases=(submit complete drain soak)
N_LIBPQ=${N_LIBPQ:-3000}
N_PG=${N_PG:-60000}
N_DRAIN=${N_DRAIN:-60000}
SOAK=${SOAK:-600}
TIMEOUT=${TIMEOUT:-300}

cd "$(dirname "$0")/.."
echo "== building bin/spurd and bin/spur-bench"
go build -o bin/spurd ./cmd/spurd
go build -o bin/spur-bench ./bench
BENCH=bin/spur-bench
OUT=${OUT:-$(mktemp -d /tmp/spur-cluster.XXXXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/spur-cluster-data.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PG_PID=""

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$PGBIN/postgres" ] || { echo "cluster.sh: PostgreSQL not found (apt-get install postgresql)" >&2; exit 1; }
[ -x "$GEARMAND" ] || { echo "cluster.sh: gearmand not found at $GEARMAND (apt-get install gearman-job-server)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_pids() {
	local p
	for p in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
	for p in ${PIDS[@]+"${PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
cleanup() {
	stop_pids
	cp "$WORK"/*.log "$OUT/" 2>/dev/null || true # the servers' logs, kept with the results
	# pg_ctl, not a signal to PG_PID: that is runuser's, which does not pass it on when root.
	if [ -n "$PG_PID" ]; then as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null 2>&1 || true; wait "$PG_PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') in $WORK/pg (fsync on)"
mkdir -p "$WORK/pg"
chown postgres "$WORK/pg" 2>/dev/null || true
as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 >"$WORK/pg/initdb.log" 2>&1
PG_PORT=$($BENCH freeport)
as_pg "$PGBIN/postgres" -D "$WORK/pg/data" -p "$PG_PORT" -k "$WORK/pg" -c listen_addresses=127.0.0.1 \
	-c fsync=on -c synchronous_commit=on -c max_connections=200 ${PGOPTS:-} >"$WORK/pg/server.log" 2>&1 &
PG_PID=$!
$BENCH waitport -addr "127.0.0.1:$PG_PORT" -timeout 30s
psql() { as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt "$@"; }
for _ in $(seq 1 50); do psql -c 'select 1' postgres >/dev/null 2>&1 && break; sleep 0.1; done
DB_SEQ=0
new_db() { DB_SEQ=$((DB_SEQ + 1)); DB="b$DB_SEQ"; psql -c "create database $DB" postgres; }

# start_nodes N: N spurd nodes on a new database; sets NODE_PORTS and NODE_PIDS.
start_nodes() {
	local n=$1 i port
	new_db
	NODE_PORTS=()
	NODE_PIDS=()
	for i in $(seq 0 $((n - 1))); do
		port=$($BENCH freeport)
		bin/spurd -p "$port" -L 127.0.0.1 -q postgres --postgres-dsn "postgres://postgres@127.0.0.1:$PG_PORT/$DB" \
			--node-name "n$i" >"$WORK/spurd-$DB-$i.log" 2>&1 &
		PIDS+=($!)
		NODE_PIDS+=($!)
		NODE_PORTS+=("$port")
		$BENCH waitport -addr "127.0.0.1:$port" -timeout 30s
	done
}

pg_pids() { # the PostgreSQL server's processes: its postmaster and the postmaster's children
	local pm
	pm=$(head -1 "$WORK/pg/data/postmaster.pid")
	echo "$pm" $(pgrep -P "$pm")
}

xacts() { psql -c 'select sum(xact_commit + xact_rollback) from pg_stat_database' postgres; }

cpu_ticks() { # the CPU ticks (user+system) of the PIDs given (gone ones count nothing)
	local t=0 p
	for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	echo $t
}

# parallel WORKLOAD "ARGS" LABEL: WORKLOAD against every node at once (@N@ in ARGS is the
# node's index); prints the summed rate and the CPU per job of the nodes and of PostgreSQL.
parallel() {
	local workload=$1 args=$2 label=$3 i addr t0 t1 c0 c1 p0 p1 x0 x1 pgp jobs=0 rate=0 pids=()
	read -r -a pgp <<<"$(pg_pids)"
	c0=$(cpu_ticks "${NODE_PIDS[@]}")
	p0=$(cpu_ticks "${pgp[@]}")
	x0=$(xacts)
	t0=$(date +%s%N)
	for i in "${!NODE_PORTS[@]}"; do
		# shellcheck disable=SC2086
		addr=${NODE_PORTS[$i]}
		[[ $addr == *:* ]] || addr=127.0.0.1:$addr
		timeout -k 10 $((TIMEOUT + 60)) $BENCH "$workload" -addr "$addr" -timeout "${TIMEOUT}s" \
			-json -label "$label" -case "$workload" ${args//@N@/$i} >"$WORK/run-$i.out" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || { echo "   a run failed:"; cat "$WORK"/run-*.out; return 1; }; done
	t1=$(date +%s%N)
	c1=$(cpu_ticks "${NODE_PIDS[@]}")
	read -r -a pgp <<<"$(pg_pids)" # backends come and go: the ones alive now
	p1=$(cpu_ticks "${pgp[@]}")
	x1=$(xacts)
	for i in "${!NODE_PORTS[@]}"; do
		grep '^{' "$WORK/run-$i.out" >>"$OUT/results.jsonl"
		jobs=$((jobs + $(grep -o '"done":[0-9]*' "$WORK/run-$i.out" | head -1 | cut -d: -f2)))
		rate=$(awk -v a="$rate" -v b="$(grep -o '"jobs_per_sec":[0-9.e+]*' "$WORK/run-$i.out" | head -1 | cut -d: -f2)" 'BEGIN { print a + b }')
	done
	# The wall-clock rate (every run from start to end, a drain's untimed fill included) and
	# the sum of the runs' own rates (their timed phases).
	awk -v j="$jobs" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v pc="$((p1 - p0))" -v x="$((x1 - x0))" -v hz="$(getconf CLK_TCK)" -v l="$label" -v r="$rate" \
		'BEGIN { s = (t1 - t0) / 1e9; printf "   %-30s %8d jobs/s (sum of the runs %d; %d jobs in %.2fs wall); CPU/job: server %.1f us, PostgreSQL %.1f us; %.2f transactions/job\n", l, j / s, r, j, s, c / hz * 1e6 / j, pc / hz * 1e6 / j, x / j }'
}

# single WORKLOAD "ARGS" LABEL: one run whose connections go round every node.
single() {
	local saved=("${NODE_PORTS[@]}") all=""
	for p in "${saved[@]}"; do all="${all:+$all,}127.0.0.1:$p"; done
	NODE_PORTS=("$all")
	parallel "$1" "$2" "$3"
	NODE_PORTS=("${saved[@]}")
}

for round in $(seq 1 "$ROUNDS"); do
	for c in "${cases[@]}"; do
		case "$c" in
		submit)
			echo "== r$round submit: durable background submit, 4 x 64 in flight, a unique per job"
			new_db
			port=$($BENCH freeport)
			"$GEARMAND" -p "$port" -L 127.0.0.1 -t 0 -l /dev/null --verbose ERROR -q postgres \
				--libpq-conninfo "host=127.0.0.1 port=$PG_PORT user=postgres dbname=$DB" >"$WORK/gearmand.log" 2>&1 &
			PIDS+=($!)
			NODE_PIDS=($!)
			NODE_PORTS=("$port")
			$BENCH waitport -addr "127.0.0.1:$port" -timeout 30s
			parallel submit-bg "-n $N_LIBPQ -conns 4 -window 64 -unique" "gearmand -q postgres (libpq)"
			stop_pids
			start_nodes 1
			parallel submit-bg "-n $N_PG -conns 4 -window 64 -unique" "spurd -q postgres, 1 node"
			stop_pids
			start_nodes 3
			parallel submit-bg "-n $((N_PG / 3)) -conns 4 -window 64 -unique" "spurd -q postgres, 3 nodes"
			stop_pids
			;;
		complete)
			echo "== r$round complete: submit-complete across 3 nodes, 12 x 64 clients and 24 workers"
			start_nodes 3
			single submit-complete "-n $N_PG -conns 12 -window 64 -workers 24" "spurd -q postgres, 3 nodes"
			stop_pids
			;;
		drain)
			echo "== r$round drain: $N_DRAIN jobs left for any node, then 24 workers round the 3 nodes"
			start_nodes 3
			$BENCH submit-bg -addr "127.0.0.1:${NODE_PORTS[0]}" -n "$N_DRAIN" -conns 4 -window 64 -fn drain -timeout "${TIMEOUT}s" | sed 's/^/   fill: /'
			single drain "-n $N_DRAIN -workers 24 -window 1 -queued -fn drain" "spurd -q postgres, 3 nodes"
			stop_pids
			;;
		soak)
			echo "== r$round soak: ${SOAK}s of submit-complete on 3 nodes; vacuum pressure on spur_jobs"
			start_nodes 3
			stat() { psql -c "select n_tup_ins, n_tup_upd, n_tup_del, n_dead_tup, autovacuum_count from pg_stat_user_tables where relname = 'spur_jobs'" "$DB"; }
			s0=$(stat)
			t0=$(date +%s)
			maxdead=0
			end=$((t0 + SOAK))
			while [ "$(date +%s)" -lt "$end" ]; do
				single submit-complete "-n 300000 -conns 12 -window 16 -workers 24 -fn soak" "soak" | tail -1
				dead=$(stat | cut -d'|' -f4)
				[ "$dead" -gt "$maxdead" ] && maxdead=$dead
			done
			s1=$(stat)
			secs=$(($(date +%s) - t0))
			IFS='|' read -r i0 u0 d0 _ a0 <<<"$s0"
			IFS='|' read -r i1 u1 d1 _ a1 <<<"$s1"
			echo "   soak ${secs}s: spur_jobs rows/s inserted $(((i1 - i0) / secs)), updated $(((u1 - u0) / secs)), deleted $(((d1 - d0) / secs)); most dead tuples seen $maxdead; autovacuum runs $((a1 - a0))"
			echo "   table size now: $(psql -c "select pg_size_pretty(pg_total_relation_size('spur_jobs'))" "$DB")"
			stop_pids
			;;
		esac
	done
done
echo "== results in $OUT/results.jsonl"
