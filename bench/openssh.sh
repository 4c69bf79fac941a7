#!/usr/bin/env bash
# A no-op `plan` over the built-in ssh2 client vs the system's OpenSSH client
# with a warm master connection (transport = "openssh", issue 14), on a lab of
# 2 nodes with one container each, applied, and a one-node topology; fastest of
# 5 each, timed inside the lab's control namespace. The handshake is what differs: ssh2 opens a connection per
# node per invocation, openssh reuses the master the warm-up run left.
# Usage, as root: bash bench/openssh.sh   (GEARTOPO=path picks the binary; default
# the debug build). Takes down what it made, also on failure.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
require_root "$@"
cd "$repo"
gt=${GEARTOPO:-$target_dir/debug/geartopo}
[ -x "$gt" ] || { echo "no $gt: cargo build first" >&2; exit 1; }
work=$(mktemp -d /tmp/geartopo-bench-openssh.XXXXXX)
export GEARTOPO_SSH_CONTROL_DIR=$work/cm NO_COLOR=1
nodes='[nodes.node1]
address = "198.18.0.1"
[nodes.node2]
address = "198.18.0.2"
'
printf 'name = "bench-openssh"\n%s' "$nodes" > "$work/lab.toml"
body='
[containers.s]
node = "node2"
image = "localhost/geartopo-busybox:latest"
command = ["sleep", "inf"]
publish = [{ port = 7000, host_port = 51000 }]
[containers.c]
node = "node1"
image = "localhost/geartopo-busybox:latest"
command = ["sleep", "inf"]
links = [{ to = "s:7000" }]
'
printf 'name = "bo"\n%s%s' "$nodes" "$body" > "$work/ssh2.toml"
printf 'name = "bo"\n[defaults]\ntransport = "openssh"\nuser = "root"\n%s%s' "$nodes" "$body" > "$work/openssh.toml"
# One node: its own topology (one container), applied beside the first.
one='[nodes.node2]
address = "198.18.0.2"
[containers.s]
node = "node2"
image = "localhost/geartopo-busybox:latest"
command = ["sleep", "inf"]
'
printf 'name = "bo1"\n%s' "$one" > "$work/ssh2-1.toml"
printf 'name = "bo1"\n[defaults]\ntransport = "openssh"\nuser = "root"\n%s' "$one" > "$work/openssh-1.toml"

cleanup() {
  "$gt" lab exec "$work/lab.toml" -- "$gt" destroy "$work/ssh2.toml" --auto-approve >/dev/null 2>&1 || true
  "$gt" lab exec "$work/lab.toml" -- "$gt" destroy "$work/ssh2-1.toml" --auto-approve >/dev/null 2>&1 || true
  for a in 198.18.0.1 198.18.0.2; do
    "$gt" lab exec "$work/lab.toml" -- ssh -o ControlPath="$work/cm/%C" -O exit "root@$a" 2>/dev/null || true
  done
  "$gt" lab down "$work/lab.toml" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$gt" lab up "$work/lab.toml" >/dev/null
"$gt" lab load "$work/lab.toml" images/out/geartopo-busybox.tar localhost/geartopo-busybox:latest >/dev/null
"$gt" lab exec "$work/lab.toml" -- "$gt" apply "$work/ssh2.toml" --auto-approve >/dev/null
"$gt" lab exec "$work/lab.toml" -- "$gt" apply "$work/ssh2-1.toml" --auto-approve >/dev/null

# Timed inside the control namespace (`lab exec`'s own start-up is not in it).
fastest() {
  local file=$1 best=999 t
  "$gt" lab exec "$work/lab.toml" -- "$gt" plan "$file" --detailed-exitcode >/dev/null # warm-up
  for _ in 1 2 3 4 5; do
    t=$("$gt" lab exec "$work/lab.toml" -- /usr/bin/time -f %e -o /dev/stdout "$gt" plan "$file" --detailed-exitcode | tail -1)
    best=$(printf '%s\n%s\n' "$best" "$t" | sort -g | head -1)
  done
  echo "$best"
}
ssh2=$(fastest "$work/ssh2.toml")
openssh=$(fastest "$work/openssh.toml")
ssh2_1=$(fastest "$work/ssh2-1.toml")
openssh_1=$(fastest "$work/openssh-1.toml")
printf '| client | no-op plan, 1 node (s) | no-op plan, 2 nodes (s) |\n|---|---:|---:|\n'
printf '| ssh2 (built in) | %s | %s |\n| openssh, warm master | %s | %s |\n' "$ssh2_1" "$ssh2" "$openssh_1" "$openssh"
# What bounds the one-node figure: one round trip over the warm master (an `ssh`
# mux client, a session, `true`), and the node's one runtime listing.
best_of() {
  local best=999 t
  for _ in 1 2 3 4 5; do
    t=$("$gt" lab exec "$work/lab.toml" "$@" | tail -1)
    best=$(printf '%s\n%s\n' "$best" "$t" | sort -g | head -1)
  done
  echo "$best"
}
mux=$(best_of -- /usr/bin/time -f %e -o /dev/stdout ssh -o ControlPath="$work/cm/%C" -o BatchMode=yes root@198.18.0.2 true)
ps=$(best_of --node node2 -- /usr/bin/time -f %e -o /dev/stdout podman ps -a --format json)
printf '\n| part | s |\n|---|---:|\n| ssh round trip over the warm master (`true`) | %s |\n| `podman ps -a --format json` on the node | %s |\n' "$mux" "$ps"
