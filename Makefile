# ssfd: the two commands a newcomer needs are `make run` and `make test`.

GO            ?= go
BIN           := $(CURDIR)/bin
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X main.version=$(VERSION)
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
FUZZTIME      ?= 30s
DATA_DIR      ?= ./data

.PHONY: all build run test fmt-check vet lint unit bench bench-revocation fuzz cover release clean

all: build

## build: compile the ssfd binary into bin/ssfd
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ssfd ./cmd/ssfd

## run: start ssfd with everything embedded (bbolt file + in-process NATS) and print what to try next
run: build
	$(BIN)/ssfd serve --dev --data-dir $(DATA_DIR)

## test: formatting, vet, lint (with the import rules), then every test with the race detector
test: fmt-check vet lint unit

fmt-check:
	@out=$$(gofmt -s -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $(GOLANGCI_LINT)

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

unit:
	$(GO) test -race -count=1 ./...

## bench: every Benchmark*, with memory figures; results go into BENCHMARKS.md by hand
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

## bench-revocation: kill switch → first 401 at a resource server over NATS, SSF push and SSF long poll
## (p50/p99/max and requests accepted after the revocation was applied); REVOCATIONS kill switches per feed
REVOCATIONS ?= 200
bench-revocation:
	$(GO) test -run='^$$' -bench='^BenchmarkRevocationPropagation$$' -benchtime=$(REVOCATIONS)x ./internal/server/

## fuzz: every fuzz target for FUZZTIME each (default 30s)
fuzz:
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  pkg=$$(dirname $$file); \
	  for target in $$(grep -oE '^func Fuzz[A-Za-z0-9_]+' $$file | sed 's/^func //'); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

## cover: test coverage per package and an HTML report in coverage.html
cover:
	$(GO) test -count=1 -coverpkg=./... -coverprofile=coverage.out ./...
	$(GO) tool cover -func=coverage.out | tail -n 1
	$(GO) tool cover -html=coverage.out -o coverage.html

## release: static binaries for linux/amd64 and linux/arm64 in dist/, version stamped
release:
	@mkdir -p dist
	@for arch in amd64 arm64; do \
	  echo "dist/ssfd-$(VERSION)-linux-$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/ssfd-$(VERSION)-linux-$$arch ./cmd/ssfd || exit 1; \
	done

clean:
	rm -rf $(BIN) dist coverage.out coverage.html
