# Two commands do everything: `make run` and `make test`.
GO       ?= go
BIN      := bin/engagements
DATA     ?= ./data
HTTP     ?= 127.0.0.1:8080
CYCLES   ?= 20
SYNC     ?= always
FUZZTIME ?= 30s

.PHONY: run build nats-cli test vet bench postgres bench-micro crash-test test-cluster test-browser fuzz fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/engagements

## run: build, then serve with the embedded NATS server and the demo data
run: build
	./$(BIN) serve --demo --data $(DATA) --http $(HTTP)

## nats-cli: the nats CLI into bin/nats, from the Go module proxy (the README's subscriber commands
## are run with it in make test: TestREADMENatsCLI)
NATSCLI_VERSION := v0.5.0
nats-cli:
	test -x bin/nats || GOBIN=$(CURDIR)/bin $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)

## test: go vet, staticcheck (a Go tool dependency, from go.mod) and the race-enabled test
## suite (what CI runs)
test: nats-cli
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) test -race -count=1 ./...

## bench: the service against raw JetStream and PostgreSQL on this machine, side by side (appends,
## rebuild, GET latency under writes, restart, peak RSS at 1M events); prints a Markdown table and
## writes bench/results.md and bench/results.json (about 5 minutes; `go run ./bench -h` for the
## knobs). Without PostgreSQL (when `make postgres` could not install it) it runs without the peer.
bench: postgres
	$(GO) run ./bench

## postgres: Debian's postgresql for the bench's peer when initdb is missing (the bench starts a
## server of its own; the package's cluster is not used). A failed install only warns.
postgres:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql) || \
		echo "make postgres: could not install postgresql; make bench runs without the PostgreSQL peer" >&2

## bench-micro: the go test benchmarks (API append vs. raw publish, rebuild vs. raw consumer, …)
bench-micro:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

## crash-test: kill -9 serve under concurrent writers CYCLES times (SYNC=always|interval);
## every acknowledged write must be stored exactly once (`make test` runs 3 cycles)
crash-test:
	CRASH_CYCLES=$(CYCLES) CRASH_SYNC=$(SYNC) $(GO) test -race -count=1 -run '^TestCrashSafety$$' -v ./cmd/engagements/

## test-cluster: two instances on an in-process 3-node nats-server cluster (replicas 3);
## the stream leader's server is shut down mid-load (`make test` runs it too)
test-cluster:
	$(GO) test -race -count=1 -run '^TestClusterFailover$$' -v ./cmd/engagements/

## test-browser: the web UI in headless Chromium (installs Debian's chromium when missing;
## `make test` runs it too, and skips it without chromium except in CI); logs where the screenshots are
test-browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(GO) test -race -count=1 -run '^TestBrowser$$' -v ./cmd/engagements/

## fuzz: run each fuzz target for FUZZTIME, one after another; new crashers
## land in the package's testdata/fuzz/ (`make test` runs the seed corpora)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./eventstore/
	$(GO) test -run '^$$' -fuzz '^FuzzSubject$$' -fuzztime $(FUZZTIME) ./eventstore/
	$(GO) test -run '^$$' -fuzz '^FuzzDecideApply$$' -fuzztime $(FUZZTIME) ./domain/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestBody$$' -fuzztime $(FUZZTIME) ./api/
	$(GO) test -run '^$$' -fuzz '^FuzzParseTime$$' -fuzztime $(FUZZTIME) ./api/

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
