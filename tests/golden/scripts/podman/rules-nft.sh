set -e
pid=$(podman inspect -f '{{.State.Pid}}' 0123456789abcdef)
[ "$pid" -gt 0 ] || { echo 0123456789abcdef" has no network namespace (state: $(podman inspect -f '{{.State.Status}}' 0123456789abcdef))" >&2; exit 1; }
ns=$(readlink "/proc/$pid/ns/net") || ns=
if [ -z "$ns" ] || [ "$ns" = "$(readlink /proc/self/ns/net)" ]; then echo 0123456789abcdef": its network namespace is this node's own (host networking?) or unreadable ($ns): refusing to change rules or sysctls there" >&2; exit 1; fi
nsenter -t "$pid" -n sysctl -q -w net.ipv4.ip_forward=1
nsenter -t "$pid" -n sysctl -q -w net.ipv4.conf.all.route_localnet=1
command -v nft >/dev/null 2>&1 || { echo "nft is not installed on this node (its firewall is nftables)" >&2; exit 1; }
nsenter -t "$pid" -n nft -f - <<'GEARTOPO_NFT'
table ip geartopo {}
delete table ip geartopo
table ip geartopo {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr != 127.0.0.0/8 ip daddr 127.0.0.0/8 ct status ! dnat ct state != { established, related } drop comment "geartopo todo app1 route_localnet guard"
	}
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.1 tcp dport 6379 dnat to 198.18.0.4:50000 comment "geartopo todo app1 127.0.0.1:6379/tcp to redisdb:6379"
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip daddr 198.18.0.4 tcp dport 50000 masquerade comment "geartopo todo app1 source for 198.18.0.4:50000/tcp"
		return comment "geartopo todo app1 applied ed89ff6ca0c1169e"
	}
}
GEARTOPO_NFT
