#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 / Ubuntu machine (as root):
# the Debian packages the tests use (gcc and libc6-dev build the node's CNI binary), the npm packages from the lockfile, and
# Kubernetes 1.20.2 (kube-apiserver and friends, built once per machine from
# Debian's source by test/kubernetes.sh, with Debian's etcd).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(gcc libc6-dev iproute2 iputils-ping procps ca-certificates containerd runc busybox-static containernetworking-plugins
  podman catatonit iptables nftables iperf3 prometheus chromium unzip bind9 bind9-dnsutils)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test/setup.sh: need root to install Debian packages: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
npm ci --no-audit --no-fund
bash test/kubernetes.sh >/dev/null
bash test/helm.sh >/dev/null
