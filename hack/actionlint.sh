#!/usr/bin/env bash
# Checks the GitHub workflows (.github/workflows/*.yaml) with actionlint: workflow syntax, expressions and their
# contexts, action inputs, permission scopes, runner labels. actionlint (github.com/rhysd/actionlint at
# ACTIONLINT_VERSION of hack/versions.env) is built from the Go module proxy into $ACTIONLINT (default:
# bin/tools/actionlint-v<version>) the first time, then reused. Nothing is downloaded from anywhere but the Go
# module proxy.
#
# actionlint also runs shellcheck and pyflakes on run: steps when it finds them on PATH; both are turned off,
# so that the check is the same on every machine (the project installs neither).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
source "$root/hack/versions.env"

out="${ACTIONLINT:-$root/bin/tools/actionlint-v$ACTIONLINT_VERSION}"
if [[ ! -x "$out" ]]; then
  echo "actionlint: building v$ACTIONLINT_VERSION into $out ($(date +%T))"
  gobin=$(mktemp -d)
  trap 'rm -rf "$gobin"' EXIT
  # Outside any module, so that neither this repository's go.mod nor its go.sum is touched.
  (cd "${TMPDIR:-/tmp}" && CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOBIN="$gobin" \
    go install -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION")
  mkdir -p "$(dirname "$out")"
  mv "$gobin/actionlint" "$out"
fi
cd "$root"
"$out" -shellcheck= -pyflakes= "$@"
echo "actionlint: v$ACTIONLINT_VERSION: workflows OK"
