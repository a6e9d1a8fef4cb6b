# medchain — make targets a newcomer can guess.
GO      ?= go
BIN     := bin/medchain
HOME_DIR ?= .medchain

.PHONY: setup build run test test-short test-fhirclient bench lint clean

setup: ## download modules and build the binary
	$(GO) mod download
	$(GO) build -o $(BIN) ./cmd/medchain

build:
	$(GO) build -o $(BIN) ./cmd/medchain

run: build ## the single-node dev network with demo accounts
	./$(BIN) dev --home $(HOME_DIR)

test: ## every test: unit, in-process nodes, multi-process crash recovery
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -short ./state/... ./app/... ./keyring/... ./tx/...

test-fhirclient: build ## a third-party FHIR client (fhir-kit-client, Node) against a dev node; needs node and npm
	cd test/fhirclient && npm ci --no-audit --no-fund && MEDCHAIN_BIN=$(CURDIR)/$(BIN) node --test client.test.js

test-short: ## the fast unit tests only
	$(GO) test -short ./...

bench: build ## throughput and latency figures for docs/BENCHMARKS.md
	./$(BIN) bench --txs 100000 --rounds 3
	$(GO) test -run '^$$' -bench . -benchmem ./tx/ ./app/

lint: ## gofmt, go vet, staticcheck (pinned)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

clean:
	rm -rf bin
