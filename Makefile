# deltactl build, test and benchmark entry points.
#
# `make test` is the one test command (README, .ci/run): it starts a real S3
# server (versitygw on loopback, built once into .cache/bin), runs go vet and
# the whole test suite with the S3 tests enabled, and stops the server.

GO        ?= go
BENCHTIME ?= 1s
S3DIR     := $(CURDIR)/.cache/s3test

.PHONY: all build test vet bench fuzz clean

all: build

build:
	$(GO) build -o bin/deltactl ./cmd/deltactl

vet:
	$(GO) vet ./...

test:
	@bash scripts/install-llamacpp-oracle.sh
	@bash scripts/with-s3.sh $(S3DIR) sh -c '$(GO) vet ./... && $(GO) test -count=1 -timeout 15m ./...'

# Benchmarks for every hot path; the S3 ones need the server too.
bench:
	@bash scripts/with-s3.sh $(S3DIR) $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./...

clean:
	rm -rf bin .cache
