set -u
# The runtime's network (a second runtime run) is read beside the rest.
nets=$(mktemp "${TMPDIR:-/tmp}/geartopo-nets.XXXXXX" 2>/dev/null) || nets=
if [ -n "$nets" ]; then docker network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' >"$nets" 2>/dev/null & netpid=$!; fi
echo "@@geartopo tcp"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo "@@geartopo udp"
cat /proc/net/udp /proc/net/udp6 2>/dev/null
echo "@@geartopo ports"
ls=$(docker ps -a --no-trunc --format '{{.Names}}|{{.Ports}}|{{.ID}}|{{.Label "geartopo.topology"}}') || { echo "geartopo: 'docker ps' failed on this node" >&2; exit 3; }
[ -z "$ls" ] || printf '%s\n' "$ls"
ids=$(printf '%s\n' "$ls" | awk -F'|' -v t=todo 'NF >= 4 { topo = $4; for (i = 5; i <= NF; i++) topo = topo "|" $i; if (topo == t) print $3 }')
echo "@@geartopo inspect"
ours=
# shellcheck disable=SC2086 # $ids is split on purpose: one inspect for every id (hex, no glob)
if [ -n "$ids" ]; then ours=$(docker inspect -f '{{.Id}} {{.State.Pid}} {{json .}}' $ids) || exit 3; fi
[ -z "$ours" ] || printf '%s\n' "$ours"
selfns=$(readlink /proc/self/ns/net)
[ -z "$ours" ] || printf '%s\n' "$ours" | while read -r id pid _; do
  echo "@@geartopo ns $id $pid"
  if [ "$pid" -gt 0 ] 2>/dev/null && [ -n "$selfns" ] && [ "$(readlink "/proc/$pid/ns/net")" = "$selfns" ]; then
    echo "@@geartopo hostns"
  elif [ "$pid" -gt 0 ] 2>/dev/null; then
    # shellcheck disable=SC2016 # expanded by the sh inside the namespace, not here
    nsenter -t "$pid" -n sh -c 'echo "@@geartopo sysctl $(cat /proc/sys/net/ipv4/ip_forward) $(cat /proc/sys/net/ipv4/conf/all/route_localnet)"; iptables-save -t nat; iptables-save -t filter; if command -v nft >/dev/null 2>&1; then echo "@@geartopo nft"; nft -j list table ip geartopo 2>/dev/null; fi' 2>/dev/null
  fi
done
echo "@@geartopo nodefilter"
iptables-save -t filter 2>/dev/null | grep -e '^:GEARTOPO-PP-' -e '^-A GEARTOPO-PP-' -e '^-A FORWARD -j GEARTOPO-PP-' || true
if [ -n "$nets" ]; then
  wait "$netpid" || true
  echo "@@geartopo subnets $(cat "$nets")"
  rm -f "$nets"
else
  echo "@@geartopo subnets $(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null)"
fi
sd="${GEARTOPO_STATE_DIR:-/var/lib/geartopo}"; hd="${GEARTOPO_HOOKS_DIR:-/etc/containers/oci/hooks.d}"; sysd=none
case "$sd$hd" in *[!A-Za-z0-9_./-]*) sd=-; hd=- ;; esac
echo "@@geartopo durable $sd $hd ${sysd:-unknown}"
# One stat and one sha256sum for all files: a node may hold a thousand.
set --
for f in "$sd/hook" "$sd/runtime" "$hd/geartopo.json" "$sd"/rules/*; do [ -f "$f" ] && set -- "$@" "$f"; done
if [ "$#" -gt 0 ]; then stat -c 'mode %a %n' "$@"; sha256sum "$@" | sed 's/^/sha /'; fi
echo "dockerruntime $(docker info --format '{{with index .Runtimes "geartopo"}}{{.Path}}{{end}}' 2>/dev/null)"
echo "@@geartopo images"
missing=
# shellcheck disable=SC2043 # one image is a list too
for img in localhost/geartopo-busybox:latest; do
  case "$ours" in *"\"$img\""*) continue ;; esac
  docker image inspect --format '{{.Id}}' "$img" >/dev/null 2>&1 || { echo "missing $img"; missing=1; }
done
if [ -n "$missing" ]; then
  for f in "${REGISTRY_AUTH_FILE:-}" /run/containers/0/auth.json "${HOME:-/root}/.config/containers/auth.json" "${DOCKER_CONFIG:-${HOME:-/root}/.docker}/config.json"; do
    if [ -z "$f" ] || [ ! -f "$f" ]; then continue; fi
    if grep -q '"creds' "$f"; then echo "auth *"; fi
    grep -o '"[^"]*"[[:space:]]*:[[:space:]]*{' "$f" | sed 's/^"\([^"]*\)".*/auth \1/'
  done
fi
echo "@@geartopo end"
