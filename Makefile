# Spur — see README.md. Every target is bounded in time.
GO      ?= go
PORT    ?= 4730
DATA    ?= ./data
FUZZTIME ?= 30s
FUZZTIMEOUT ?= 1h

CRASH_CYCLES ?= 200

.PHONY: build run test vet fmt-check fuzz bench bench-compare crash clean

build:
	$(GO) build -o bin/spurd ./cmd/spurd
	$(GO) build -o bin/spur ./cmd/spur
	$(GO) build -o bin/spur-bench ./bench

# Starts the server on port $(PORT) in the foreground; Ctrl-C stops it gracefully.
run: build
	./bin/spurd -p $(PORT) --data-dir $(DATA) --verbose INFO

# Every test: unit, end-to-end (real server on ephemeral ports), fuzz seeds, and the interop
# suite with the real PHP, libgearman CLI, Perl, libgearman C API and npm clients (their absence
# is a failure; .ci/run installs them, npm ci in interop/node included).
# The zero-allocation and heap assertions skip themselves under -race (the detector
# allocates), so they run once more without it.
test: vet fmt-check interop/node/node_modules
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 -run 'Alloc|ZeroAlloc|AllocatesNothing|KeepsNoResultInMemory' ./codec/ ./queue/ ./engine/ ./bench/ ./wal/

# The npm client the interop suite drives, at the version its lockfile pins.
interop/node/node_modules: interop/node/package.json interop/node/package-lock.json
	cd interop/node && npm ci --no-audit --no-fund
	@touch $@

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Runs each fuzz target for $(FUZZTIME); FUZZTIMEOUT bounds each run (go test's default 10m
# would cut a 10-minute run short).
fuzz:
	@for t in $$($(GO) test ./fuzz/ -list '^Fuzz' | grep '^Fuzz'); do \
		echo "== $$t ($(FUZZTIME))"; \
		$(GO) test ./fuzz/ -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -timeout $(FUZZTIMEOUT) || exit 1; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./codec/ ./queue/ ./engine/ ./wal/

# Spur against C gearmand (Debian's gearman-job-server) on loopback, A B A B, 3 rounds;
# COMPARE picks the comparisons (see bench/compare.sh). All of them take about 40 minutes.
COMPARE ?= deploy core sizes idle depth durable memory
bench-compare: build
	bench/compare.sh $(COMPARE)

# The crash test at length: $(CRASH_CYCLES) SIGKILL/restart cycles (make test runs 20).
crash:
	$(GO) test -count=1 -timeout 60m -run '^TestCrashLosesNoAcknowledgedJob$$' -v ./cmd/spurd/ -crash.cycles=$(CRASH_CYCLES)

clean:
	rm -rf bin
