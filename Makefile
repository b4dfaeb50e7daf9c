# Two commands do everything: `make run` and `make test`.
GO       ?= go
BIN      := bin/engagements
DATA     ?= ./data
HTTP     ?= 127.0.0.1:8080

.PHONY: run build test vet bench fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/engagements

## run: build, then serve with the embedded NATS server and the demo data
run: build
	./$(BIN) serve --demo --data $(DATA) --http $(HTTP)

## test: go vet and the race-enabled test suite (what CI runs)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## bench: API append vs. raw JetStream publish, same sync and concurrency
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./api/

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
