#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok)
# from the Go module proxy into bin/k8s/<version>/. A no-op when the binaries are already there.
#
# Nothing is downloaded from anywhere but the Go module proxy. Kubernetes is built from a throw-away tools
# module that requires k8s.io/kubernetes and replaces each staging module (which k8s.io/kubernetes's own go.mod
# points at ./staging/src/...) by its published version; that list is generated from the go.mod of the release.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
source "$root/hack/versions.env"

out="${K8S_BIN_DIR:-$root/bin/k8s/$KUBERNETES_VERSION}"
work="${K8S_BIN_WORK:-$root/bin/.k8s-build}"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

want=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
missing=()
for b in "${want[@]}"; do [[ -x "$out/$b" ]] || missing+=("$b"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "k8s-bin: control plane $KUBERNETES_VERSION already built in $out"
  exit 0
fi
mkdir -p "$out" "$work"
echo "k8s-bin: building ${missing[*]} into $out"
echo "k8s-bin: a cold build takes 10-20 minutes on 2 cores (later runs reuse the Go build cache)"

have() { [[ " ${missing[*]} " == *" $1 "* ]]; }

k8s_minor=${KUBERNETES_VERSION#*.}; k8s_minor=${k8s_minor%%.*}
if have kube-apiserver || have kube-controller-manager || have kube-scheduler; then
  mod="$work/kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$mod"
  if [[ ! -f "$mod/go.sum" ]]; then
    gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "module local/k8s-tools"
      echo
      grep -E '^go [0-9]' "$gomod"
      echo
      echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
      echo
      # One replace per staging module: k8s.io/<name> => k8s.io/<name> v0.<minor>.<patch>
      sed -nE 's#^[[:space:]]*(k8s\.io/[^[:space:]]+) => \./staging/src/.*#replace \1 => \1 v0.'"${KUBERNETES_VERSION#*.}"'#p' "$gomod"
    } >"$mod/go.mod"
    cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
    echo "k8s-bin: resolving k8s.io/kubernetes v$KUBERNETES_VERSION ($(grep -c '^replace' "$mod/go.mod") staging replaces)"
    (cd "$mod" && go mod tidy)
  fi
  pkg=k8s.io/component-base/version
  cpkg=k8s.io/client-go/pkg/version
  v="v$KUBERNETES_VERSION"
  ld="-s -w"
  for p in $pkg $cpkg; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    have "$b" || continue
    echo "k8s-bin: go build $b ($(date +%T))"
    (cd "$mod" && go build -trimpath -ldflags "$ld" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b") && mv "$out/$b.tmp" "$out/$b"
  done
fi

if have etcd; then
  mod="$work/etcd-$ETCD_VERSION"
  mkdir -p "$mod"
  if [[ ! -f "$mod/go.sum" ]]; then
    printf 'module local/etcd-tools\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" >"$mod/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$mod/tools.go"
    (cd "$mod" && go mod tidy)
  fi
  echo "k8s-bin: go build etcd ($(date +%T))"
  (cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3) && mv "$out/etcd.tmp" "$out/etcd"
fi

if have kwok; then
  echo "k8s-bin: go install kwok ($(date +%T))"
  GOBIN="$work/gobin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  cp "$work/gobin/kwok" "$out/kwok"
fi

"$out/kube-apiserver" --version
"$out/etcd" --version | head -1
echo "k8s-bin: done: $out"
