# Kappa: build, test, lint, benchmarks and the demo.
# `make demo` and `make test` are the two commands a newcomer needs (see README.md).

SHELL        := bash
.SHELLFLAGS  := -eo pipefail -c

GO           ?= go
BIN          := bin/kappa
CACHE        := .cache
TOOLS_BIN    := $(CURDIR)/$(CACHE)/bin
GOLANGCI     := $(TOOLS_BIN)/golangci-lint
TEST_TIMEOUT ?= 20m
# Extra `go test` flags, e.g. `make test GOTESTFLAGS=-v` (.ci/run does).
GOTESTFLAGS  ?=
# Benchmarks: pattern and iterations (1x runs every benchmark once, as CI does).
BENCH        ?= .
BENCHTIME    ?= 1x
DEMO_DIR     ?= $(CACHE)/demo

.PHONY: all build test vet lint fmt fuzz interop bench bench-duckdb demo tools versitygw clean

all: build

## build: compile the kappa binary into bin/kappa
build:
	$(GO) build -o $(BIN) ./cmd/kappa

## test: go vet + every test (installs versitygw into .cache/bin so the S3 tests run)
test: versitygw
	$(GO) vet ./...
	KAPPA_VERSITYGW="$(TOOLS_BIN)/versitygw" $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTESTFLAGS) ./...

vet:
	$(GO) vet ./...

## versitygw: install the pinned S3 gateway used by the S3 store tests (idempotent)
versitygw:
	@scripts/versitygw.sh >/dev/null

## lint: golangci-lint (pinned in tools/go.mod) with .golangci.yml
lint: $(GOLANGCI)
	$(GOLANGCI) run ./...

## fmt: rewrite the sources with gofumpt (the formatter lint checks)
fmt: $(GOLANGCI)
	$(GOLANGCI) fmt ./...

## tools: build the pinned developer tools into .cache/bin
tools: $(GOLANGCI) versitygw

$(GOLANGCI): tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS_BIN)
	$(GO) build -C tools -o $(GOLANGCI) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## interop: the real-peer suite (Spark, delta-rs, DuckDB, Apache Kafka, S3); installs into .venv/ and .cache/
interop:
	scripts/interop.sh

## fuzz: run every fuzz target briefly (FUZZTIME per target, default 10s), as CI does
FUZZTIME ?= 10s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

## bench: run the benchmarks (BENCH=regexp, BENCHTIME=1x by default; e.g. BENCHTIME=5s)
bench:
	@mkdir -p $(CACHE)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem -timeout $(TEST_TIMEOUT) ./... | tee $(CACHE)/bench.txt
	@echo "== DuckDB read_parquet over the same files (ratio = ours / DuckDB rows/s)"
	PY="$$(scripts/venv.sh)" && "$$PY" scripts/bench-duckdb.py --compare $(CACHE)/bench.txt --skip-missing | tee -a $(CACHE)/bench.txt

## bench-duckdb: the scan + GROUP BY benchmark interleaved with DuckDB, 5 rounds (fairest ratio)
bench-duckdb:
	PY="$$(scripts/venv.sh)" && "$$PY" scripts/bench-duckdb.py --go --runs 5

## demo: build kappa and run the guided tour on a fresh local table under .cache/demo
demo: build
	$(BIN) demo --dir $(DEMO_DIR)

## clean: remove build output and the demo table (keeps the tool cache)
clean:
	rm -rf bin $(DEMO_DIR)
