#!/usr/bin/env bash
# The demo, on a fresh machine: installs what it needs, brings up a lab of two
# real hosts for examples/redis-todo.toml, plans, applies, shows real traffic
# through the link, plans again (no changes), destroys, and takes the lab down.
# Needs root. Everything lives in network namespaces the lab creates.
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_root "$@"
cd "$repo"
file=examples/redis-todo.toml
image=localhost/geartopo-busybox:latest

step "installing what the demo needs (scripts/install-deps.sh)"
bash scripts/install-deps.sh
find_cargo

step "building geartopo and the local image (no registry)"
build_geartopo
bash images/build.sh
gt() { echo "\$ geartopo $*"; "$geartopo" "$@"; }
# geartopo itself runs where the lab's nodes are reachable, with the lab's SSH key.
in_lab() { echo "\$ geartopo lab exec $file -- geartopo $*"; "$geartopo" lab exec "$file" -- "$geartopo" "$@"; }
on_node() { local node=$1; shift; echo "[$node]\$ $*"; "$geartopo" lab exec "$file" --node "$node" -- sh -c "$*"; }

cleanup() {
  local rc=$?
  step "cleaning up"
  "$geartopo" lab exec "$file" -- "$geartopo" destroy "$file" --auto-approve >/dev/null 2>&1 || true
  "$geartopo" lab down "$file" || true
  exit $rc
}

step "a lab: node1 and node4 as real hosts (namespaces, sshd, podman)"
gt lab down "$file" >/dev/null
trap cleanup EXIT
gt lab up "$file"
gt lab load "$file" images/out/geartopo-busybox.tar "$image"

step "the topology"
cat "$file"

step "plan: what apply would do (exit code 2: changes)"
set +e; in_lab plan "$file" --detailed-exitcode; rc=$?; set -e
echo "(plan exit code: $rc)"
[ "$rc" -eq 2 ] || { echo "demo: expected plan to show changes (2), got $rc" >&2; exit 1; }

step "apply"
in_lab apply "$file" --auto-approve

step "real traffic: app1 on node1 talks to 127.0.0.1:6379, redisdb on node4 answers"
for i in 1 2 3 4 5 6 7 8 9 10; do
  if reply=$("$geartopo" lab exec "$file" --node node1 -- podman exec todo-app1 gt-ask tcp 127.0.0.1 6379 PING 2>/dev/null); then break; fi
  sleep 0.5
done
echo "[node1]\$ podman exec todo-app1 gt-ask tcp 127.0.0.1 6379 PING"
echo "$reply"
case "$reply" in *"+PONG"*) ;; *) echo "demo: no answer through the link" >&2; exit 1 ;; esac
echo
echo "nothing listens on port 6379 inside app1 (busybox netstat): the answer came through the link"
on_node node1 'podman exec todo-app1 netstat -tln'
echo
echo "the link, as rules in app1's own network namespace:"
on_node node1 'nsenter -t "$(podman inspect -f "{{.State.Pid}}" todo-app1)" -n iptables-save -t nat | grep GEARTOPO'

step "plan again: nothing to do (exit code 0)"
in_lab plan "$file" --detailed-exitcode

step "show: live state"
in_lab show "$file" || true

step "destroy"
in_lab destroy "$file" --auto-approve
on_node node1 'podman ps --all'
on_node node4 'podman ps --all'

step "lab down"
trap - EXIT
gt lab down "$file"
echo
echo "demo done: planned, applied, sent real traffic through the link, destroyed."
