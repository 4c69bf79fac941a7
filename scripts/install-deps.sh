#!/usr/bin/env bash
# Installs what the lab, the demo, the end-to-end tests and the build need on Debian/Ubuntu:
# namespaces (iproute2), sshd per node (openssh-server), containers (podman with
# runc: crun fails on these machines), iptables, and what the test image is built
# from (busybox-static, socat). Idempotent, and quick when all is there already:
# apt is only called for what is missing.
set -euo pipefail

# netavark is named because the lab's podman configuration selects it.
lab=(iptables openssh-server openssh-client iproute2 podman runc netavark busybox-static socat util-linux tar)
# The same-view cluster tests pack a real clustered server: etcd, from Debian.
cluster=(etcd-server etcd-client)
# Building geartopo: the ssh2 crate compiles libssh2 against OpenSSL and zlib.
build=(gcc libc6-dev make pkg-config libssl-dev zlib1g-dev)
packages=("${lab[@]}" "${cluster[@]}" "${build[@]}")

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/install-deps.sh: run as root (sudo $0)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "scripts/install-deps.sh: no apt-get; install by hand: ${packages[*]}" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "scripts/install-deps.sh: all present (${packages[*]})"
else
  echo "scripts/install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # With recommends: the set LAB-NOTES.md records as working on these machines.
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A fresh install may start the machine's own sshd; the lab runs its own per node
# and does not need it, but leaves it as the package set it up.
for b in ip nsenter sshd ssh ssh-keygen podman runc iptables iptables-save socat busybox; do
  if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$b" >/dev/null; then
    echo "scripts/install-deps.sh: $b still missing after install" >&2
    exit 1
  fi
done
