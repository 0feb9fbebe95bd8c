#!/usr/bin/env bash
# Build pinned kube-apiserver and etcd binaries from the Go module proxy, once.
#
# Why a build and not a download: this platform reaches package registries only,
# and the Go module proxy serves Kubernetes' and etcd's source. The binaries are
# cached outside the repository (WPENV_CACHE, default ~/.cache/wpenv-operator),
# keyed by version, so later runs and CI reuse them; bumping a version rebuilds.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
CACHE="${WPENV_CACHE:-$HOME/.cache/wpenv-operator}"
RECIPE=2  # bump when this script changes what it builds
OUT="$CACHE/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-r$RECIPE"
export GOFLAGS="${GOFLAGS:-} -trimpath"
export CGO_ENABLED=0

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
  echo "$OUT"
  exit 0
fi
command -v go >/dev/null || { echo "go toolchain not found: it is needed to build the control plane" >&2; exit 1; }
mkdir -p "$OUT"
# One build at a time: a second caller waits, then finds the binaries.
exec 9>"$CACHE/control-plane/.lock"
flock 9
if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
  echo "$OUT"
  exit 0
fi
work="$CACHE/control-plane/src"
rm -rf "$work"; mkdir -p "$work/apiserver" "$work/etcd"

# kube-apiserver: a wrapper module requiring k8s.io/kubernetes. Its own go.mod
# points every staging module (required at v0.0.0) at ./staging/..., which a
# dependent module cannot see; replace each with the published v0.<minor>.<patch>.
staging_version="v0.${K8S_VERSION#v1.}"
(
  cd "$work/apiserver"
  go mod init wpenv.local/apiserver >/dev/null 2>&1
  modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$modfile")
  go mod edit -go="$go_directive"
  sed -n '/^replace (/,/^)/p' "$modfile" | awk '/=> \.\/staging/ {print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@$staging_version"
  done
  # go get records the requirement and every checksum the build needs.
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
  # Stamp the real version, as Kubernetes' own release build does, so clients
  # (kubectl version, skew checks) can parse it.
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  go build -ldflags="$ldflags" -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
)

# etcd: the server module's etcdmain package is the real etcd entry point.
(
  cd "$work/etcd"
  go mod init wpenv.local/etcd >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
  go mod tidy >/dev/null
  go build -o "$OUT/etcd" .
)
rm -rf "$work"
echo "$OUT"
