#!/usr/bin/env bash
# install-torch-peer.sh: the PyTorch reference of `make test` and peer of
# `make bench-train` (Debian's numpy, scipy and torch on OpenBLAS), installed
# once with apt-get.
# libopenblas0-pthread matters: without it numpy and torch run on the netlib
# reference BLAS (about 4 GFLOP/s) and every comparison is a strawman
# (../shared/bench/BASELINES.md). Exits 0 when the peer is usable, 1 (with
# the reason on stderr) when it cannot be installed here.
set -euo pipefail

have_peer() { /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null; }
blas_ok() {
	# Read whole, then matched: grep -q stopping early would kill the
	# writer with SIGPIPE, which pipefail reports as a failure.
	local alt
	alt=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null) || return 1
	grep -q '^Value: .*openblas' <<<"$alt"
}

if ! have_peer || ! blas_ok; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "install-torch-peer: needs root and apt-get to install python3-torch and libopenblas0-pthread" >&2
		exit 1
	fi
	echo "install-torch-peer: apt-get install python3-numpy python3-scipy python3-torch libopenblas0-pthread" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-numpy python3-scipy python3-torch libopenblas0-pthread >/dev/null
fi
have_peer || { echo "install-torch-peer: /usr/bin/python3 cannot import torch after the install" >&2; exit 1; }
blas_ok || { echo "install-torch-peer: libblas.so.3 does not point at OpenBLAS (update-alternatives --display libblas.so.3-x86_64-linux-gnu)" >&2; exit 1; }
