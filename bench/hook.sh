#!/bin/sh
# What geartopo's OCI hook adds to a container start (docs/durable.md): the time
# of `podman start` of two stopped containers from the same image, one matched
# by the hook (annotation io.geartopo.rules naming RULES_FILE) and one not,
# alternately, N times each. Run on a lab node after an apply has installed the
# hook and written RULES_FILE:
#   geartopo lab exec LAB --node node1 -- sh bench/hook.sh RULES_FILE [N]
set -eu
rules=$1
n=${2:-20}
image=localhost/geartopo-busybox:latest
podman rm -f bench-hook bench-plain >/dev/null 2>&1 || true
podman create --name bench-hook --annotation io.geartopo.rules="$rules" "$image" sleep inf >/dev/null
podman create --name bench-plain "$image" sleep inf >/dev/null
ms() { echo $(( $(date +%s%N) / 1000000 )); }
with=
without=
i=0
while [ "$i" -lt "$n" ]; do
  for c in bench-hook bench-plain; do
    t0=$(ms); podman start "$c" >/dev/null; t1=$(ms)
    podman stop -t 0 "$c" >/dev/null
    if [ "$c" = bench-hook ]; then with="$with $((t1 - t0))"; else without="$without $((t1 - t0))"; fi
  done
  i=$((i + 1))
done
# The hook really ran: its rules are in the namespace of the last start.
podman start bench-hook >/dev/null
pid=$(podman inspect -f '{{.State.Pid}}' bench-hook)
nsenter -t "$pid" -n iptables-save -t nat | grep -q -- '-A OUTPUT -j GEARTOPO-OUTPUT' || { echo "the hook did not run" >&2; exit 1; }
podman rm -f bench-hook bench-plain >/dev/null
stats() { # shellcheck disable=SC2086 # split on purpose: one number a line
  printf '%s\n' $1 | sort -n | awk '{ a[NR] = $1; s += $1 } END { printf "median %d ms, mean %.1f ms, min %d, max %d (n=%d)\n", a[int((NR + 1) / 2)], s / NR, a[1], a[NR], NR }'; }
echo "podman start with the hook:    $(stats "$with")"
echo "podman start without the hook: $(stats "$without")"
