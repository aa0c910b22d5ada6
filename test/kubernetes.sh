#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests run (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kubectl, kube-proxy) from Debian's `kubernetes` source package, once per machine, and installs etcd.
# From the same source it builds Kubernetes' own e2e suite (e2e.test) and its test image's program
# (agnhost), with what the image needs beside it (its Dockerfile, porter's certificate and key), in
# $OUT/e2e: `npm run conformance` and the conformance test run them against the sandbox cluster.
#
#   bash test/kubernetes.sh           # prints the folder that holds the binaries
#
# The binaries are cached by version in $ENIWAY_KUBE_CACHE (default /var/cache/eniway), outside any clone,
# so a machine builds them once (about 4-8 minutes on 2 cores). Debian 12 ships Kubernetes 1.20.2 as source
# only, with Go 1.19; its vendored modern-go/reflect2 1.0.1 makes every binary panic on the first map it
# decodes under Go >= 1.18, so we compile with Debian's reflect2 1.0.2 and json-iterator 1.1.12 laid over the
# vendored copies (`go build -overlay`), leaving the source tree as Debian ships it.
set -euo pipefail

VERSION=1.20.2
COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
CACHE=${ENIWAY_KUBE_CACHE:-/var/cache/eniway}
OUT=$CACHE/kubernetes-$VERSION
BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
E2E=(e2e.test agnhost agnhost-image/Dockerfile agnhost-image/VERSION agnhost-image/localhost.crt agnhost-image/localhost.key)

have_debs() {
  local p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1; done
}
need_root() {
  [[ $(id -u) -eq 0 ]] || { echo "test/kubernetes.sh: need root to $1" >&2; exit 1; }
}

if ! have_debs etcd-server; then
  need_root "install etcd-server"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >&2
fi

built=1
for b in "${BINS[@]}"; do [[ -x $OUT/bin/$b ]] || built=0; done
e2e_built=1
for f in "${E2E[@]}"; do [[ -f $OUT/e2e/$f ]] || e2e_built=0; done
if ((built && e2e_built)); then
  echo "$OUT/bin"
  exit 0
fi

need_root "build Kubernetes $VERSION"
export DEBIAN_FRONTEND=noninteractive
if ! have_debs golang-go rsync jq make dpkg-dev; then
  apt-get install -y -qq --no-install-recommends golang-go rsync jq make dpkg-dev >&2
fi

work=$CACHE/build-$VERSION
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# The source package and the two fixed Go libraries, from Debian's archive.
srclist=/etc/apt/sources.list.d/eniway-debian-src.sources
if [[ ! -f $srclist ]] && [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$srclist"
fi
apt-get update -qq >&2
apt-get source -qq --download-only kubernetes >&2 || {
  echo "test/kubernetes.sh: cannot fetch the source package 'kubernetes' $VERSION (Debian 12 bookworm has it);" \
    "on another distribution set ENIWAY_KUBE_BIN to a folder with kube-apiserver $VERSION" >&2
  exit 1
}
ls kubernetes_*really$VERSION*.dsc >/dev/null # Debian names it 1.20.5+really1.20.2
dpkg-source -x --no-check kubernetes_*.dsc src >&2
apt-get download -qq golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev >&2
mkdir fixed
for deb in golang-github-modern-go-reflect2-dev_*.deb golang-github-json-iterator-go-dev_*.deb; do
  dpkg-deb -x "$deb" fixed
done

K=$work/src
export GOCACHE=$work/gocache CGO_ENABLED=0
mkdir -p "$K/.go/src/k8s.io"
ln -sfn ../../.. "$K/.go/src/k8s.io/kubernetes"

# `make generated_files` writes the generated code (deepcopy, defaults, openapi, bindata) and sets up the
# GOPATH tree _output/local/go/src/k8s.io/kubernetes that the build below compiles from.
(cd "$K" && GOPATH=$K/.go make generated_files >&2)
G=$K/_output/local/go/src/k8s.io/kubernetes
[[ -d $G/vendor ]]

# overlay.json: every vendored file of the two libraries maps to Debian's fixed version, or to "" when gone.
overlay() {
  local vendor=$1 fixed=$2 f rel first=1
  for f in "$K/vendor/$vendor"/*.go; do
    rel=${f##*/}
    ((first)) || printf ',\n'
    first=0
    if [[ -f $fixed/$rel ]]; then printf '"%s": "%s"' "$G/vendor/$vendor/$rel" "$fixed/$rel"
    else printf '"%s": ""' "$G/vendor/$vendor/$rel"; fi
  done
  for f in "$fixed"/*.go; do
    rel=${f##*/}
    [[ -f $K/vendor/$vendor/$rel ]] && continue
    [[ $rel == *_test.go ]] && continue
    printf ',\n"%s": "%s"' "$G/vendor/$vendor/$rel" "$f"
  done
}
gosrc=$work/fixed/usr/share/gocode/src/github.com
{
  printf '{"Replace": {\n'
  overlay github.com/modern-go/reflect2 "$gosrc/modern-go/reflect2"
  printf ',\n'
  overlay github.com/json-iterator/go "$gosrc/json-iterator/go"
  printf '\n}}\n'
} >overlay.json
jq -e '.Replace | length > 10' overlay.json >/dev/null

ld="-s -w -buildid="
for p in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
  ld="$ld -X $p.gitVersion=v$VERSION -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitCommit=$COMMIT"
  ld="$ld -X $p.gitTreeState=archive -X $p.buildDate=1970-01-01T00:00:00Z"
done
gobuild() { (cd "$G" && GO111MODULE=off GOPATH=$K/_output/local/go nice go "$@" >&2); }
mkdir -p "$OUT"
if ((!built)); then
  mkdir -p "$work/bin"
  pkgs=()
  for b in "${BINS[@]}"; do pkgs+=("./cmd/$b"); done
  gobuild build -installsuffix static -overlay "$work/overlay.json" -trimpath -ldflags "$ld" \
    -tags "selinux,notest" -o "$work/bin/" "${pkgs[@]}"
  rm -rf "$OUT/bin"
  mv "$work/bin" "$OUT/bin"
fi
if ((!e2e_built)); then
  # vet does not read overlays: the suite's own vet run would see the broken vendored files.
  mkdir -p "$work/e2e/agnhost-image"
  gobuild test -c -vet=off -installsuffix static -overlay "$work/overlay.json" -trimpath -ldflags "$ld" \
    -tags selinux -o "$work/e2e/e2e.test" ./test/e2e
  gobuild build -installsuffix static -overlay "$work/overlay.json" -trimpath -ldflags "$ld" \
    -o "$work/e2e/agnhost" ./test/images/agnhost
  for f in Dockerfile VERSION porter/localhost.crt porter/localhost.key; do
    cp "$K/test/images/agnhost/$f" "$work/e2e/agnhost-image/"
  done
  rm -rf "$OUT/e2e"
  mv "$work/e2e" "$OUT/e2e"
fi
rm -rf "$work"
"$OUT/bin/kube-apiserver" --version >&2
echo "$OUT/bin"
