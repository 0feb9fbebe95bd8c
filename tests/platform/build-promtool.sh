#!/usr/bin/env bash
# Build a pinned promtool (Prometheus's rule checker and rule unit-test runner) from the
# Go module proxy, once, as build-control-plane.sh does for kube-apiserver and etcd.
#
# Cached outside the repository (WPENV_CACHE, default ~/.cache/wpenv-operator), keyed by
# version: later runs and CI reuse it, bumping the version rebuilds. The module
# github.com/prometheus/prometheus v0.3XX.Y is Prometheus 3.XX.Y (Prometheus tags its Go
# module that way). `remove_all_sd` leaves out the service-discovery plugins promtool
# does not need for rule tests, which makes the build much lighter.
set -euo pipefail

PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
CACHE="${WPENV_CACHE:-$HOME/.cache/wpenv-operator}"
RECIPE=1  # bump when this script changes what it builds
OUT="$CACHE/promtool/prometheus-$PROMETHEUS_MODULE_VERSION-r$RECIPE"
export GOFLAGS="${GOFLAGS:-} -trimpath"
export CGO_ENABLED=0

if [[ -x "$OUT/promtool" ]]; then
  echo "$OUT/promtool"
  exit 0
fi
command -v go >/dev/null || { echo "go toolchain not found: it is needed to build promtool" >&2; exit 1; }
mkdir -p "$OUT"
# One build at a time: a second caller waits, then finds the binary.
exec 9>"$CACHE/promtool/.lock"
flock 9
if [[ -x "$OUT/promtool" ]]; then
  echo "$OUT/promtool"
  exit 0
fi
# v0.316.0 -> 3.16.0, stamped the way Prometheus's release build does (promtool --version).
minor="${PROMETHEUS_MODULE_VERSION#v0.}"; patch="${minor#*.}"; minor="${minor%%.*}"
version="${minor:0:1}.${minor:1}.$patch"
GOBIN="$OUT" go install -tags remove_all_sd \
  -ldflags="-X github.com/prometheus/common/version.Version=$version" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2
echo "$OUT/promtool"
