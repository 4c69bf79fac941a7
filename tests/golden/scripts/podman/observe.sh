set -u
echo "@@geartopo tcp"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo "@@geartopo udp"
cat /proc/net/udp /proc/net/udp6 2>/dev/null
echo "@@geartopo ports"
podman ps -a --format '{{.Names}}|{{.Ports}}' || { echo "geartopo: 'podman ps' failed on this node" >&2; exit 3; }
ids=$(podman ps -a -q --no-trunc --filter label=geartopo.topology=todo) || exit 3
echo "@@geartopo inspect"
# shellcheck disable=SC2086 # $ids is split on purpose: one inspect for every id (hex, no glob)
if [ -n "$ids" ]; then podman inspect $ids || exit 3; else echo '[]'; fi
# One inspect for every pid, one nsenter per namespace: each podman run costs a
# tenth of a CPU second or more, which is what bounds reading many nodes at once.
pids=
# shellcheck disable=SC2086 # as above
if [ -n "$ids" ]; then pids=$(podman inspect -f '{{.Id}} {{.State.Pid}}' $ids) || exit 3; fi
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
