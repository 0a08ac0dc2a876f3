# orgbridge — `make run` and `make test` do all the set-up on a fresh Debian machine with Go.
GO      ?= go
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN     := bin/orgbridge
# Test packages run two at a time: the machine this is built for has 2 cores.
TEST_P  ?= 2

.PHONY: run test test-distributed deps deps-redis build vet bench fuzz clean screenshots chaos

## deps: install what running and testing need (redis-server; chromium for the console's browser tests) when missing
deps: deps-redis
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium with apt-get (about 124 MB; the console's browser tests drive it)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@chromium --version 2>/dev/null | head -1

deps-redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server with apt-get"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

## build: the one binary
build:
	$(GO) build -o $(BIN) ./cmd/orgbridge

## run: everything in one process (NATS, Redis, emulators, ingress, workers); data in ./data
run: deps build
	./$(BIN) dev

## test: vet, then every test against real NATS and Redis, under the race detector
test: deps vet
	$(GO) test -race -p $(TEST_P) -timeout 30m -count=1 ./...

## test-distributed: only the tests of the distributed shape (part of `make test` too): failovers of a 3-node NATS
## cluster, Redis Sentinel and Redis Cluster, start-up during an election, the store and workers on a Redis Cluster,
## three worker replicas sharing every consumer (scale-out), and deploy/'s cluster configs, scripts and manifests
test-distributed: deps-redis
	$(GO) test -race -p $(TEST_P) -timeout 10m -count=1 ./internal/failover ./deploy
	$(GO) test -race -p $(TEST_P) -timeout 10m -count=1 -run 'Cluster|Sentinel|Startup|OpenRedis|Failover|LeaderElections|ScaleOut' \
		./internal/store ./internal/bus ./internal/ingress ./cmd/orgbridge ./workers/provisioning ./workers/disconnect

vet:
	$(GO) vet ./...

## bench: the ingress against its ceilings, the 100k-user provisioning sync, then the package benchmarks (see docs/BENCHMARKS.md)
bench: deps build
	./$(BIN) bench ingress
	./$(BIN) bench provisioning
	$(GO) test -run '^$$' -bench . -benchmem ./...

## chaos: the reliability suite, not part of test (docs/OPERATIONS.md): nats-server, redis-server, the emulators,
## the ingress and two workers as processes on loopback with deploy/'s users, 300 signed events/s with Slack's
## retries, and in turn kill -9 of each, NATS stopped 5 s, Redis stopped 30 s, over-long subjects; about 4 minutes
chaos: deps-redis build bin/nats-server
	$(GO) run ./internal/chaos/cmd

# nats-server for chaos, built from the module orgbridge already depends on (go.mod pins it; no download).
bin/nats-server: go.mod go.sum
	$(GO) build -o $@ github.com/nats-io/nats-server/v2

## fuzz: a minute on each fuzz target
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRequestPath -fuzztime 60s ./internal/ingress
	$(GO) test -run '^$$' -fuzz FuzzParseEnvelope -fuzztime 60s ./internal/ingress
	$(GO) test -run '^$$' -fuzz FuzzParseCSV -fuzztime 60s ./workers/mapping
	$(GO) test -run '^$$' -fuzz FuzzDisconnectRequest -fuzztime 60s ./events
	$(GO) test -run '^$$' -fuzz FuzzParseFilter -fuzztime 60s ./internal/emulator/org

## screenshots: the console's main pages, taken by its browser tests, into docs/screenshots
screenshots: deps
	mkdir -p docs/screenshots
	ORGBRIDGE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'Console' ./internal/console/

clean:
	rm -rf bin
