#!/usr/bin/env bash
# s3server.sh start DIR | stop DIR
#
# Runs a throwaway S3 server for the tests: versitygw (Apache-2.0) on a free
# loopback port, posix backend in a fresh temp folder under DIR, random root
# keys. `start` waits until the server answers and writes DIR/env (mode 600):
#
#   DELTACTL_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
#   DELTACTL_TEST_S3_BUCKET=deltactl-test
#   AWS_ACCESS_KEY_ID=...  AWS_SECRET_ACCESS_KEY=...  AWS_REGION=us-east-1
#
# which `make test` sources (scripts/with-s3.sh). `stop` kills the server and
# removes the temp folder, the env file and the log.
#
# The binary is built once with
#   GOBIN=<repo>/.cache/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
# (about 70 s) and reused while <repo>/.cache/bin/versitygw.version says v1.8.0.
# DELTACTL_VERSITYGW_BIN may name an already built v1.8.0 binary to seed that
# cache instead of building (a convenience for machines that have one; CI
# leaves it unset and builds).
set -euo pipefail

VERSION=v1.8.0
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	echo "usage: $0 start|stop DIR" >&2
	exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
bindir=$repo/.cache/bin
bin=$bindir/versitygw
stamp=$bindir/versitygw.version

ensure_bin() {
	if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$VERSION" ]; then
		return
	fi
	mkdir -p "$bindir"
	rm -f "$stamp"
	if [ -n "${DELTACTL_VERSITYGW_BIN:-}" ] && [ -x "$DELTACTL_VERSITYGW_BIN" ]; then
		echo "s3server: using prebuilt $DELTACTL_VERSITYGW_BIN" >&2
		cp "$DELTACTL_VERSITYGW_BIN" "$bin.tmp" && mv "$bin.tmp" "$bin"
	else
		echo "s3server: building versitygw $VERSION into $bindir (about a minute, once)" >&2
		GOBIN=$bindir GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
	fi
	echo "$VERSION" >"$stamp"
}

randhex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

port_free() { ! { (exec 3<>"/dev/tcp/127.0.0.1/$1"); } 2>/dev/null; }

answers() {
	# Any HTTP answer (even 403 for an unsigned request) means it is serving.
	local line
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	IFS= read -r -t 2 line <&3 || true
	exec 3>&- 3<&-
	[[ $line == HTTP/* ]]
}

ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q versitygw; }

stop() {
	if [ -f "$dir/pid" ]; then
		pid=$(cat "$dir/pid")
		if ours "$pid"; then
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
			ours "$pid" && kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	if [ -f "$dir/data" ]; then
		data=$(cat "$dir/data")
		case $data in "$dir"/gw.*) rm -rf "$data" ;; esac
	fi
	rm -f "$dir/pid" "$dir/data" "$dir/env" "$dir/versitygw.log"
}

start() {
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	stop # a previous run that was not stopped
	ensure_bin
	data=$(mktemp -d "$dir/gw.XXXXXX")
	echo "$data" >"$dir/data"
	access=$(randhex 10)
	secret=$(randhex 20)
	for _ in 1 2 3 4 5; do
		port=$((10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 22000)) # below the ephemeral range
		port_free "$port" || continue
		# Keys go through the environment, not argv, so `ps` does not show them.
		ROOT_ACCESS_KEY_ID=$access ROOT_SECRET_ACCESS_KEY=$secret \
			setsid "$bin" --port "127.0.0.1:$port" --quiet posix "$data" \
			>"$dir/versitygw.log" 2>&1 </dev/null &
		pid=$!
		echo "$pid" >"$dir/pid"
		for _ in $(seq 150); do
			if answers "$port"; then
				umask 077
				cat >"$dir/env" <<ENV
DELTACTL_TEST_S3_ENDPOINT=http://127.0.0.1:$port
DELTACTL_TEST_S3_BUCKET=deltactl-test
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
AWS_REGION=us-east-1
ENV
				echo "s3server: versitygw $VERSION on http://127.0.0.1:$port (pid $pid), env in $dir/env" >&2
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break # exited (e.g. the port was taken)
			sleep 0.2
		done
		kill "$pid" 2>/dev/null || true
		echo "s3server: versitygw did not come up on port $port:" >&2
		tail -5 "$dir/versitygw.log" >&2 || true
	done
	echo "s3server: giving up" >&2
	stop
	return 1
}

case $cmd in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
