# deltactl build, test and benchmark entry points.
#
# `make test` is the one test command (README, .ci/run): it starts a real S3
# server (versitygw on loopback, built once into .cache/bin), runs go vet and
# the whole test suite with the S3 tests enabled, and stops the server. The
# last line it prints is "N passed, N failed, N skipped" (internal/testsum);
# tests whose ../shared data is missing are skipped, or fail under CI=true.

GO        ?= go
BENCHTIME ?= 1s
FUZZTIME  ?= 10s
S3DIR     := $(CURDIR)/.cache/s3test

.PHONY: all build test vet bench fuzz clean

all: build

build:
	$(GO) build -o bin/deltactl ./cmd/deltactl

vet:
	$(GO) vet ./...

# testsum is built first so that its summary is the last line printed (go run
# would add "exit status 1" after it).
test:
	@bash scripts/install-tokenizer-oracle.sh
	@bash scripts/install-llamacpp-oracle.sh
	@# The PyTorch reference (Debian packages): a failure to install it fails
	@# CI; elsewhere its tests skip with the reason.
	@bash scripts/install-torch-peer.sh || [ "$$CI" != true ]
	@$(GO) build -o .cache/bin/testsum ./internal/testsum
	@bash scripts/with-s3.sh $(S3DIR) bash -c 'set -o pipefail; $(GO) vet ./... && $(GO) test -json -count=1 -timeout 15m ./... | .cache/bin/testsum'

# Benchmarks for every hot path; the S3 ones need the server too.
bench:
	@bash scripts/with-s3.sh $(S3DIR) $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./...

# LoRA training on the published shapes of SmolLM2-135M, Llama-3.2-1B/3B and
# Llama-3.1-8B (random BF16 weights cached in .cache/shapes; 8B is 16 GB):
# tok/s, CPU s per step and peak RSS, beside the PyTorch peer (installed with
# apt-get once). STEPS=n, PEER=0, or give the shapes:
# make bench-train SHAPES="llama-3.2-3b:1".
.PHONY: bench-train
bench-train:
	@bash scripts/bench-train.sh $(SHAPES)

# Every Fuzz target, FUZZTIME each (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$(grep -rl --include='*_test.go' --exclude-dir=.cache '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin .cache
