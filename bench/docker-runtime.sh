#!/bin/sh
# What geartopo's docker runtime wrapper (and the hook it adds) costs a container
# start (docs/durable.md): the time of `docker start` of two stopped containers
# from the same image, both labelled geartopo.rules=RULES_FILE, one under the
# wrapper (--runtime geartopo) and one under runc, alternately, N times each. A
# third, unlabelled, under the wrapper shows what the wrapper alone costs a
# container it leaves to runc. Run on a prepared docker lab node after an apply
# wrote RULES_FILE (the hook and wrapper are in GEARTOPO_STATE_DIR then):
#   geartopo lab exec LAB --node node5 -- sh bench/docker-runtime.sh RULES_FILE [N]
set -eu
rules=$1
n=${2:-20}
image=localhost/geartopo-busybox:latest
docker rm -f bench-wrap bench-runc bench-pass >/dev/null 2>&1 || true
docker create --name bench-wrap --runtime geartopo --label geartopo.rules="$rules" "$image" sleep inf >/dev/null
docker create --name bench-runc --label geartopo.rules="$rules" "$image" sleep inf >/dev/null
docker create --name bench-pass --runtime geartopo "$image" sleep inf >/dev/null
ms() { echo $(( $(date +%s%N) / 1000000 )); }
wrap='' runc='' pass=''
i=0
while [ "$i" -lt "$n" ]; do
  for c in bench-wrap bench-runc bench-pass; do
    t0=$(ms); docker start "$c" >/dev/null; t1=$(ms)
    docker stop -t 0 "$c" >/dev/null
    case $c in
      bench-wrap) wrap="$wrap $((t1 - t0))" ;;
      bench-runc) runc="$runc $((t1 - t0))" ;;
      *) pass="$pass $((t1 - t0))" ;;
    esac
  done
  i=$((i + 1))
done
# The hook really ran: its rules are in the namespace of the last start.
docker start bench-wrap >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' bench-wrap)
nsenter -t "$pid" -n iptables-save -t nat | grep -q -- '-A OUTPUT -j GEARTOPO-OUTPUT' || { echo "the hook did not run" >&2; exit 1; }
docker rm -f bench-wrap bench-runc bench-pass >/dev/null
stats() { # shellcheck disable=SC2086 # split on purpose: one number a line
  printf '%s\n' $1 | sort -n | awk '{ a[NR] = $1; s += $1 } END { printf "median %d ms, mean %.1f ms, min %d, max %d (n=%d)\n", a[int((NR + 1) / 2)], s / NR, a[1], a[NR], NR }'; }
echo "docker start, wrapper + hook:       $(stats "$wrap")"
echo "docker start, runc (no hook):        $(stats "$runc")"
echo "docker start, wrapper, no label:     $(stats "$pass")"
