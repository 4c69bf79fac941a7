set -e
[ "$(docker inspect -f '{{.State.Running}}' 0123456789abcdef)" = true ] || docker start 0123456789abcdef >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' 0123456789abcdef)
[ "$pid" -gt 0 ] || { echo 0123456789abcdef" has no network namespace (state: $(docker inspect -f '{{.State.Status}}' 0123456789abcdef))" >&2; exit 1; }
ns=$(readlink "/proc/$pid/ns/net") || ns=
if [ -z "$ns" ] || [ "$ns" = "$(readlink /proc/self/ns/net)" ]; then echo 0123456789abcdef": its network namespace is this node's own (host networking?) or unreadable ($ns): refusing to change rules or sysctls there" >&2; exit 1; fi
nsenter -t "$pid" -n sysctl -q -w net.ipv4.ip_forward=1
nsenter -t "$pid" -n sysctl -q -w net.ipv4.conf.all.route_localnet=1
nsenter -t "$pid" -n iptables-restore --noflush <<'GEARTOPO_RESTORE'
*filter
:GEARTOPO-INPUT - [0:0]
-A GEARTOPO-INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "geartopo todo app1 route_localnet guard" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
*nat
:GEARTOPO-OUTPUT - [0:0]
:GEARTOPO-POSTROUTING - [0:0]
:GEARTOPO-PREROUTING - [0:0]
-A GEARTOPO-OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 6379 -m comment --comment "geartopo todo app1 127.0.0.1:6379/tcp to redisdb:6379" -j DNAT --to-destination 198.18.0.4:50000
-A GEARTOPO-POSTROUTING -d 198.18.0.4/32 -p tcp -m tcp --dport 50000 -m comment --comment "geartopo todo app1 source for 198.18.0.4:50000/tcp" -j MASQUERADE
-A GEARTOPO-POSTROUTING -m comment --comment "geartopo todo app1 applied b4bedf1f13796fd3" -j RETURN
COMMIT
GEARTOPO_RESTORE
saved_filter=$(nsenter -t "$pid" -n iptables-save -t filter)
saved_nat=$(nsenter -t "$pid" -n iptables-save -t nat)
for triple in filter:INPUT:GEARTOPO-INPUT nat:OUTPUT:GEARTOPO-OUTPUT nat:POSTROUTING:GEARTOPO-POSTROUTING nat:PREROUTING:GEARTOPO-PREROUTING; do
  t=${triple%%:*}; rest=${triple#*:}; b=${rest%%:*}; o=${rest#*:}
  if [ "$t" = filter ]; then saved=$saved_filter; add="-I $b 1"; else saved=$saved_nat; add="-A $b"; fi
  n=$(printf '%s\n' "$saved" | grep -c -x -e "-A $b -j $o" || true)
  # shellcheck disable=SC2086 # $add is two or three words on purpose
  if [ "$n" -eq 0 ]; then nsenter -t "$pid" -n iptables -w -t "$t" $add -j "$o"; fi
  while [ "$n" -gt 1 ]; do nsenter -t "$pid" -n iptables -w -t "$t" -D "$b" -j "$o"; n=$((n-1)); done
done
nsenter -t "$pid" -n nft -f - <<'GEARTOPO_NFT'
table ip geartopo {}
delete table ip geartopo
GEARTOPO_NFT
