#!/bin/sh
# poem-sentiment-jsonl.sh TSV... > JSONL
#
# Converts Poem Sentiment TSV files (id<TAB>verse<TAB>label, labels -1, 0, 1,
# 2; testdata/poem_sentiment) into the prompt/completion JSONL that
# `deltactl train` and `deltactl eval` read, one record per verse:
#
#   {"prompt":"verse: <verse>\nsentiment:","completion":" negative\n"}
#
# Labels: -1 negative, 0 no_impact, 1 positive, 2 mixed. The loss (and eval's
# greedy exact-match accuracy) covers the completion only. Verses are copied
# byte for byte with JSON escapes for '"' and '\'; the data holds no other
# characters that need one. A malformed line stops the conversion with its
# file and line number on stderr and exit status 1. The Go twin of this
# script, used by the CLI tests, is poemSentimentJSONL in
# cmd/deltactl/train_cli_test.go; a test checks that both agree.
set -eu
exec awk -F'\t' '
# esc escapes a string for JSON, a character at a time: awk versions differ
# on backslashes in gsub replacements, plain concatenation does not.
function esc(s,    out, i, c) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\\" || c == "\"") out = out "\\"
		out = out c
	}
	return out
}
BEGIN { lab["-1"] = "negative"; lab["0"] = "no_impact"; lab["1"] = "positive"; lab["2"] = "mixed" }
$0 == "" { next }
NF != 3 || !($3 in lab) {
	printf "poem-sentiment-jsonl: %s:%d: want id<TAB>verse<TAB>label with label -1, 0, 1 or 2\n", FILENAME, FNR > "/dev/stderr"
	exit 1
}
{
	printf "{\"prompt\":\"verse: %s\\nsentiment:\",\"completion\":\" %s\\n\"}\n", esc($2), lab[$3]
}' "$@"
