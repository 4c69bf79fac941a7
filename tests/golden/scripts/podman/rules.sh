set -e
pid=$(podman inspect -f '{{.State.Pid}}' 0123456789abcdef)
[ "$pid" -gt 0 ] || { echo 0123456789abcdef" has no network namespace (state: $(podman inspect -f '{{.State.Status}}' 0123456789abcdef))" >&2; exit 1; }
nsenter -t "$pid" -n sysctl -q -w net.ipv4.ip_forward=1
nsenter -t "$pid" -n sysctl -q -w net.ipv4.conf.all.route_localnet=1
nsenter -t "$pid" -n iptables-restore --noflush <<'GEARTOPO_RESTORE'
*nat
:GEARTOPO-OUTPUT - [0:0]
:GEARTOPO-POSTROUTING - [0:0]
:GEARTOPO-PREROUTING - [0:0]
-A GEARTOPO-OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 6379 -m comment --comment "geartopo todo app1 127.0.0.1:6379/tcp to redisdb:6379" -j DNAT --to-destination 198.18.0.4:50000
-A GEARTOPO-POSTROUTING -d 198.18.0.4/32 -p tcp -m tcp --dport 50000 -m comment --comment "geartopo todo app1 source for 198.18.0.4:50000/tcp" -j MASQUERADE
-A GEARTOPO-POSTROUTING -m comment --comment "geartopo todo app1 applied 47d3e93d6c63d9db" -j RETURN
COMMIT
GEARTOPO_RESTORE
saved=$(nsenter -t "$pid" -n iptables-save -t nat)
for pair in OUTPUT:GEARTOPO-OUTPUT POSTROUTING:GEARTOPO-POSTROUTING PREROUTING:GEARTOPO-PREROUTING; do
  b=${pair%%:*}; o=${pair#*:}
  n=$(printf '%s\n' "$saved" | grep -c -x -e "-A $b -j $o" || true)
  if [ "$n" -eq 0 ]; then nsenter -t "$pid" -n iptables -w -t nat -A "$b" -j "$o"; fi
  while [ "$n" -gt 1 ]; do nsenter -t "$pid" -n iptables -w -t nat -D "$b" -j "$o"; n=$((n-1)); done
done
