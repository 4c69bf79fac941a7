d="${GEARTOPO_RUN_DIR:-/run/geartopo}"; mkdir -p "$d" || exit 1
if mkdir "$d/apply.lock" 2>/dev/null; then
  printf '%s\n' 'geartopo apply of todo by root@host1 pid 42 since unix time 0' > "$d/apply.lock/holder"
  printf '%s\n' topology=todo user=root host=host1 pid=42 start_ticks=4242 boot_id=0a1b2c3d-0000-4000-8000-000000000000 since=0 > "$d/apply.lock/info"
else
  echo "locked by: $(cat "$d/apply.lock/holder" 2>/dev/null) (lock $d/apply.lock)" >&2
  sed 's/^/lock-info: /' "$d/apply.lock/info" >&2 2>/dev/null || true
  exit 75
fi
set -u
echo "@@geartopo tcp"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo "@@geartopo udp"
cat /proc/net/udp /proc/net/udp6 2>/dev/null
echo "@@geartopo ports"
docker ps -a --format '{{.Names}}|{{.Ports}}' || { echo "geartopo: 'docker ps' failed on this node" >&2; exit 3; }
ids=$(docker ps -a -q --no-trunc --filter label=geartopo.topology=todo) || exit 3
echo "@@geartopo inspect"
# shellcheck disable=SC2086 # $ids is split on purpose: one inspect for every id (hex, no glob)
if [ -n "$ids" ]; then docker inspect $ids || exit 3; else echo '[]'; fi
# One inspect for every pid, one nsenter per namespace: each podman run costs a
# tenth of a CPU second or more, which is what bounds reading many nodes at once.
pids=
# shellcheck disable=SC2086 # as above
if [ -n "$ids" ]; then pids=$(docker inspect -f '{{.Id}} {{.State.Pid}}' $ids) || exit 3; fi
selfns=$(readlink /proc/self/ns/net)
[ -z "$pids" ] || printf '%s\n' "$pids" | while read -r id pid; do
  echo "@@geartopo ns $id $pid"
  if [ "$pid" -gt 0 ] 2>/dev/null && [ -n "$selfns" ] && [ "$(readlink "/proc/$pid/ns/net")" = "$selfns" ]; then
    echo "@@geartopo hostns"
  elif [ "$pid" -gt 0 ] 2>/dev/null; then
    # shellcheck disable=SC2016 # expanded by the sh inside the namespace, not here
    nsenter -t "$pid" -n sh -c 'echo "@@geartopo sysctl $(cat /proc/sys/net/ipv4/ip_forward) $(cat /proc/sys/net/ipv4/conf/all/route_localnet)"; iptables-save -t nat; iptables-save -t filter; if command -v nft >/dev/null 2>&1; then echo "@@geartopo nft"; nft -j list table ip geartopo 2>/dev/null; fi' 2>/dev/null
  fi
done
echo "@@geartopo end"
