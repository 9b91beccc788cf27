#!/usr/bin/env bash
# ci-pipeline.sh: the CI pipeline of docs/ci.md, end to end, on the tiny base
# model built into deltactl. It takes no arguments. It runs the deltactl on
# PATH (or $DELTACTL) against the registry in $DELTACTL_REGISTRY, with
# whatever S3 environment (DELTACTL_S3_ENDPOINT, AWS_*) the caller exported,
# and works in a temporary folder under $TMPDIR that it removes.
#
#   1. push the base once (a re-run uploads nothing)
#   2. train a LoRA from the base's ref (reproducible: a retrain gives the
#      same bytes, and its push uploads 0 bytes)
#   3. gate it on held-out data (eval --max-loss --baseline base
#      --min-improvement: exit 3 when a condition fails)
#   4. push it, labelled with the commit and the gate's result
#   5. promote it to task:prod by compare-and-swap (tag --expect)
#   6. deploy: pull + merge + verify
#   7. a second candidate is promoted, then rolled back (rollback --steps 1)
#   8. two racing promotions: exactly one wins, the other exits 5
#   9. a failing gate: exit 3, prod unchanged
#  10. clean up: keep the newest candidates (gc --keep-last --protect)
#
# Every decision branches on an exit code (deltactl help exit-codes); jq only
# reads fields of --json output.
set -euo pipefail

DELTACTL=${DELTACTL:-deltactl}
: "${DELTACTL_REGISTRY:?set DELTACTL_REGISTRY to the registry URL (a folder or s3://BUCKET/PREFIX)}"
export DELTACTL_REGISTRY

work=$(mktemp -d "${TMPDIR:-/tmp}/deltactl-ci.XXXXXX")
trap 'rm -rf "$work"' EXIT

NAME=ci/tinyllama
BASE=$NAME:base
PROD=$NAME:prod
SHA=${GITHUB_SHA:-${CI_COMMIT_SHA:-local}}
# Tiny but real: 20 steps of the bundled base take seconds on 2 cores.
TRAIN=(--method lora --rank 4 --steps 20 --batch 4 --seq 48 --lr 1e-2 --threads 2)

dc() { "$DELTACTL" "$@"; }
log() { printf '== %s\n' "$*" >&2; }
fail() { printf 'ci-pipeline: FAIL: %s\n' "$*" >&2; exit 1; }

# status CMD...: run CMD and print its exit code (never stops the script).
status() {
	local rc=0
	"$@" || rc=$?
	echo "$rc"
}

# expect CODE CMD...: run CMD, fail unless it exits CODE.
expect() {
	local want=$1 rc
	shift
	rc=$(status "$@")
	[ "$rc" = "$want" ] || fail "$* exited $rc, want $want"
}

# digest REF: the manifest digest REF names, or "none" when it does not
# exist (exit 4); any other failure stops the pipeline.
digest() {
	local out rc=0
	out=$(dc show "$1" --json) || rc=$?
	case $rc in
	0) jq -r .digest <<<"$out" ;;
	4) echo none ;;
	*) fail "show $1 exited $rc" ;;
	esac
}

# train_candidate SEED OUT: train a LoRA from the base's ref.
train_candidate() {
	dc train --base "$BASE" --data "$work/data/train.jsonl" "${TRAIN[@]}" --seed "$1" --out "$2" -q
}

# gate DELTA [FLAGS...]: evaluate DELTA on held-out data against the base;
# exit 3 when a gate condition fails. The report goes to $work/gate.json.
gate() {
	local delta=$1
	shift
	dc eval --base "$BASE" --delta "$delta" --data "$work/data/eval.jsonl" --threads 2 \
		--baseline base "$@" --json >"$work/gate.json"
}

log "0. the bundled tiny base and its task data (no registry touched)"
dc --version
dc demo --export-base "$work/base" --export-data "$work/data" -q

log "1. push the base once"
dc push "$BASE" "$work/base" --json >"$work/push-base.json"
[ "$(jq -r .uploaded_bytes < <(dc push "$BASE" "$work/base" --json))" = 0 ] || fail "re-pushing the base uploaded bytes"

log "2. train candidate 1 from $BASE (and once more: same bytes, 0 bytes uploaded)"
train_candidate 1 "$work/cand1"
train_candidate 1 "$work/cand1-again"
expect 0 dc diff "$work/cand1" "$work/cand1-again" --exit-code -q
grep -q "\"$BASE@sha256:" "$work/cand1/adapter_config.json" || fail "the adapter does not record $BASE by digest"

log "3. gate candidate 1 on held-out data"
expect 0 gate "$work/cand1" --max-loss 4.0 --min-improvement 0.5
[ "$(jq -r .gate.passed "$work/gate.json")" = true ] || fail "gate.passed is not true"
[ "$(jq -r .evaluated.records "$work/gate.json")" -gt 0 ] || fail "the gate evaluated no records"
loss=$(jq -r .loss "$work/gate.json")

log "4. push candidate 1, labelled"                       # --label: issue 12 item 6
dc push "$NAME:cand-1" "$work/cand1" --base "$BASE" --label "git_sha=$SHA" --label gate=passed --label "eval_loss=$loss" --json >"$work/push1.json"
cand1=$(jq -r .digest "$work/push1.json")
[ "$(jq -r .uploaded_bytes < <(dc push "$NAME:cand-1" "$work/cand1-again" --base "$BASE" --label "git_sha=$SHA" --label gate=passed --label "eval_loss=$loss" --json))" = 0 ] ||
	fail "re-pushing an identical retrain uploaded bytes"

log "5. promote candidate 1 to $PROD (compare-and-swap)"  # tag --expect: issue 12 item 1
prev=$(digest "$PROD")
dc tag "$NAME:cand-1" "$PROD" --expect "$prev" --json >"$work/promote1.json"
[ "$(digest "$PROD")" = "$cand1" ] || fail "$PROD is not candidate 1"

log "6. deploy: pull + merge + verify"
dc pull "$PROD" "$work/deploy/adapter" -q
dc merge --base "$BASE" --delta "$PROD" --out "$work/deploy/merged" -q
expect 0 dc verify "$BASE" "$PROD" -q

log "7. candidate 2: train, gate, push, promote; then roll back to candidate 1"
train_candidate 2 "$work/cand2"
expect 0 gate "$work/cand2" --max-loss 4.0 --min-improvement 0.5
dc push "$NAME:cand-2" "$work/cand2" --base "$BASE" --label "git_sha=$SHA" --label gate=passed --json >"$work/push2.json"
cand2=$(jq -r .digest "$work/push2.json")
dc tag "$NAME:cand-2" "$PROD" --expect "$cand1" -q
[ "$(digest "$PROD")" = "$cand2" ] || fail "$PROD is not candidate 2"
dc log "$PROD" --json >"$work/log.json"                   # log, rollback: issue 12 item 5
dc rollback "$PROD" --steps 1 -q
[ "$(digest "$PROD")" = "$cand1" ] || fail "rollback did not bring back candidate 1"

log "8. two racing promotions with the same --expect: exactly one wins, the other exits 5"
train_candidate 3 "$work/cand3"
dc push "$NAME:cand-3" "$work/cand3" --base "$BASE" --label "git_sha=$SHA" -q
cand3=$(digest "$NAME:cand-3")
(status dc tag "$NAME:cand-2" "$PROD" --expect "$cand1" -q >"$work/race-a") &
(status dc tag "$NAME:cand-3" "$PROD" --expect "$cand1" -q >"$work/race-b") &
wait
a=$(cat "$work/race-a") b=$(cat "$work/race-b")
case "$a,$b" in
0,5) winner=$cand2 ;;
5,0) winner=$cand3 ;;
*) fail "racing promotions exited $a and $b, want 0 and 5" ;;
esac
[ "$(digest "$PROD")" = "$winner" ] || fail "$PROD is not the winner of the race"

log "9. a failing gate exits 3 and leaves $PROD alone"
before=$(digest "$PROD")
rc=$(status gate "$NAME:cand-1" --max-loss 0.001)
[ "$rc" = 3 ] || fail "a failing gate exited $rc, want 3"
[ "$(jq -r .gate.passed "$work/gate.json")" = false ] || fail "gate.passed is not false"
if [ "$rc" = 0 ]; then dc tag "$NAME:cand-1" "$PROD" --expect "$before" -q; fi
[ "$(digest "$PROD")" = "$before" ] || fail "$PROD moved after a failing gate"

log "10. clean up: keep the newest 2 candidates, never prod or the base"  # gc --keep-last: issue 12 item 7
dc gc --keep-last 2 --match "$NAME:cand-*" --protect '*:prod' --protect '*:base' --grace 0s --json >"$work/gc.json"
expect 4 dc show "$NAME:cand-1"
expect 0 dc rm "$NAME:cand-1" --if-exists -q
expect 0 dc verify -q
[ "$(digest "$PROD")" = "$before" ] || fail "gc moved $PROD"
log "pipeline passed"
