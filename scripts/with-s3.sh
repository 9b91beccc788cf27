#!/usr/bin/env bash
# with-s3.sh DIR CMD...: start the test S3 server (scripts/s3server.sh) with
# its state under DIR, run CMD with the server's variables exported, stop the
# server whatever happens, and exit with CMD's status.
set -euo pipefail
dir=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
trap 'bash "$here/s3server.sh" stop "$dir" >/dev/null 2>&1 || true' EXIT
bash "$here/s3server.sh" start "$dir"
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
"$@"
