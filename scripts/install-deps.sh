#!/usr/bin/env bash
# Installs what the lab, the demo, the end-to-end tests and the build need on Debian/Ubuntu:
# namespaces (iproute2), sshd per node (openssh-server), containers (podman with
# runc: crun fails on these machines), iptables, what the test images are built
# from (busybox-static, socat, etcd), the C parts of the build and shellcheck. Starts no
# service. Idempotent, and quick when all is there already: apt is only called
# for what is missing.
set -euo pipefail

# netavark is named because the lab's podman configuration selects it. docker.io
# (dockerd 20.10 and its containerd) runs the lab's docker nodes, one dockerd per node.
# nftables (nft) is the firewall of nodes with `firewall = "nftables"`.
# sudo and passwd (useradd): a lab node whose topology logs in as a non-root user with
# `sudo = true` gets that user and a passwordless sudoers file.
lab=(iptables nftables openssh-server openssh-client iproute2 podman runc netavark docker.io busybox-static socat util-linux tar sudo passwd)
# Building geartopo: the ssh2 crate compiles libssh2 against OpenSSL and zlib.
build=(gcc libc6-dev make pkg-config libssl-dev zlib1g-dev)
# The same-view end-to-end case packs a real etcd cluster image (images/etcd).
images=(etcd-server etcd-client)
# CI reads the golden node scripts (tests/golden/scripts) with shellcheck; `graph` output is
# drawn by graphviz's dot and the man pages rendered by man (groff) in tests/graph.rs
# and tests/cli.rs, which would otherwise only say they skipped.
checks=(shellcheck graphviz man-db groff)
# The route_localnet end-to-end case sends a raw Ethernet frame with python3's
# AF_PACKET socket.
e2e=(python3)
packages=("${lab[@]}" "${build[@]}" "${images[@]}" "${checks[@]}" "${e2e[@]}")

source "$(dirname "$0")/common.sh"
root_needed_for="it installs packages with apt-get" require_root
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
  # Packages only: the lab runs its own sshd and dockerd per node and etcd only in containers,
  # so no service of these packages is started on the machine (policy-rc.d 101).
  own_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=yes
  fi
  trap 'if [ "$own_policy" = yes ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
  apt-get update -qq
  # With recommends: the set LAB-NOTES.md records as working on these machines.
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for b in ip nsenter sshd ssh ssh-keygen podman runc dockerd iptables iptables-save socat busybox shellcheck nft dot man groff python3; do
  if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$b" >/dev/null; then
    echo "scripts/install-deps.sh: $b still missing after install" >&2
    exit 1
  fi
done
