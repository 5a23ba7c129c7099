#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v3/cmd/helm at HELM_VERSION of hack/versions.env) from the Go module proxy into
# $HELM (default: bin/tools/helm-v<version>), for `helm lint` and `helm template` in the chart tests. A no-op
# when the binary is already there. Nothing is downloaded from anywhere but the Go module proxy.
#
# The linker flags are those of helm's own Makefile: the version, and the Kubernetes version that
# `helm template` and `helm lint` assume without a cluster (.Capabilities.KubeVersion), derived from the
# client-go version helm is built with (client-go v0.N.x is Kubernetes 1.N). Without them helm reports
# v3.<minor> and assumes Kubernetes 1.20.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
source "$root/hack/versions.env"

out="${HELM:-$root/bin/tools/helm-v$HELM_VERSION}"
if [[ -x "$out" ]]; then
  echo "helm: v$HELM_VERSION already built: $out"
  exit 0
fi
export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# Outside any module, so that neither this repository's go.mod nor its go.sum is touched.
cd "${TMPDIR:-/tmp}"
mod=helm.sh/helm/v3
gomod=$(go mod download -json "$mod@v$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
clientgo=$(sed -nE 's#^[[:space:]]*k8s\.io/client-go v0\.([0-9]+)\..*#\1#p' "$gomod")
if [[ -z "$clientgo" ]]; then
  echo "helm: no k8s.io/client-go requirement in $gomod" >&2
  exit 1
fi
ld="-s -w -X $mod/internal/version.version=v$HELM_VERSION -X $mod/internal/version.gitTreeState=clean"
for p in pkg/lint/rules pkg/chartutil; do
  ld+=" -X $mod/$p.k8sVersionMajor=1 -X $mod/$p.k8sVersionMinor=$clientgo"
done
echo "helm: building v$HELM_VERSION into $out ($(date +%T); a cold build takes a few minutes on 2 cores)"
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOBIN="$gobin" go install -trimpath -ldflags "$ld" "$mod/cmd/helm@v$HELM_VERSION"
mkdir -p "$(dirname "$out")"
mv "$gobin/helm" "$out"
"$out" version --short
echo "helm: done: $out"
