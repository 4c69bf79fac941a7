set -e
pid=$(podman inspect -f '{{.State.Pid}}' 0123456789abcdef)
[ "$pid" -gt 0 ] || { echo 0123456789abcdef" has no network namespace (state: $(podman inspect -f '{{.State.Status}}' 0123456789abcdef))" >&2; exit 1; }
ns=$(readlink "/proc/$pid/ns/net") || ns=
if [ -z "$ns" ] || [ "$ns" = "$(readlink /proc/self/ns/net)" ]; then echo 0123456789abcdef": its network namespace is this node's own (host networking?) or unreadable ($ns): refusing to change rules or sysctls there" >&2; exit 1; fi
sd="${GEARTOPO_STATE_DIR:-/var/lib/geartopo}"; hd="${GEARTOPO_HOOKS_DIR:-/etc/containers/oci/hooks.d}"
case "$sd" in /*) ok=1 ;; *) ok= ;; esac; case "$hd" in /*) ;; *) ok= ;; esac
case "$sd$hd" in *[!A-Za-z0-9_./-]*) ok= ;; esac
[ -n "$ok" ] || { echo "geartopo: GEARTOPO_STATE_DIR and GEARTOPO_HOOKS_DIR must be absolute paths of A-Z a-z 0-9 _ . - /" >&2; exit 1; }
mkdir -p "$sd/rules"; chmod 755 "$sd"; chmod 700 "$sd/rules"
cat > "$sd/hook.new" <<'GEARTOPO_HOOK'
#!/bin/sh
# geartopo-hook 1
# Written by geartopo (docs/durable.md); plan shows a change to it as drift and
# apply puts it back. Run by the container runtime as an OCI hook (createRuntime:
# the container's namespaces exist, its process does not run yet) at every start
# of a container geartopo created, whatever started it. It puts the container's
# owned rules and sysctls in its network namespace, from the rules file the
# annotation io.geartopo.rules names. The container's state JSON is on stdin.
# Idempotent: the owned chains are replaced as a whole and each jump into them is
# made present exactly once, so a namespace that survived a restart is fine.
# Touches nothing but the owned chains, the jumps into them and the sysctls.
# Every process counts (a start waits for the hook): shell builtins where they do.
set -u
dir=${1:-${0%/*}}
fail() { echo "geartopo hook: $*" >&2; exit 1; }
IFS= read -r state || [ -n "$state" ] || fail "could not read the container state"
# Compact JSON from the runtime; a quote inside a string is escaped (\"), so
# neither key matches inside a value.
pid=
rest=${state#*\"pid\":}
if [ "$rest" != "$state" ]; then rest=${rest#"${rest%%[! ]*}"}; pid=${rest%%[!0-9]*}; fi
name=
rest=${state#*\"io.geartopo.rules\":}
if [ "$rest" != "$state" ]; then rest=${rest#"${rest%%[! ]*}"}; rest=${rest#\"}; name=${rest%%\"*}; fi
[ -n "$name" ] || exit 0
case $name in
  .* | *[!A-Za-z0-9_.-]*) fail "invalid rules file name in the annotation: $name" ;;
esac
if [ -z "$pid" ] || [ "$pid" -le 0 ]; then fail "$name: no pid in the container state"; fi
file=$dir/rules/$name
[ -f "$file" ] || fail "$name: its rules file $file is missing; geartopo apply writes it again"
ns=$(readlink "/proc/$pid/ns/net") || ns=
if [ -z "$ns" ] || [ "$ns" = "$(readlink /proc/self/ns/net)" ]; then
  fail "$name: its network namespace is this node's own (host networking?) or unreadable ($ns): refusing to change rules or sysctls there"
fi
IFS=' ' read -r magic version backend < "$file" || fail "$name: empty rules file"
if [ "$magic" != geartopo-rules ] || [ "$version" != 1 ]; then fail "$name: $file is not a geartopo-rules 1 file"; fi
# shellcheck disable=SC2016 # expanded by the sh inside the namespace
nsenter -t "$pid" -n sh -c '
set -u
file=$1 backend=$2
while IFS=" " read -r word key value; do
  case $word in
    sysctl)
      case $key in *[!a-z0-9_/]* | "") echo "geartopo hook: bad sysctl $key" >&2; exit 1 ;; esac
      printf "%s\n" "$value" > "/proc/sys/$key" || exit 1 ;;
    payload) break ;;
  esac
done < "$file"
case $backend in
  iptables)
    # The payload, then for each owned chain the jump fixes the saved tables
    # call for (a missing jump added, a duplicate removed): one restore.
    iptables-save | awk -v file="$file" -v chains="filter:INPUT:GEARTOPO-INPUT nat:OUTPUT:GEARTOPO-OUTPUT nat:POSTROUTING:GEARTOPO-POSTROUTING nat:PREROUTING:GEARTOPO-PREROUTING" "
      BEGIN { k = split(chains, c, \" \") }
      /^\\*/ { t = substr(\$0, 2); next }
      { for (i = 1; i <= k; i++) { split(c[i], p, \":\"); if (t == p[1] && \$0 == \"-A \" p[2] \" -j \" p[3]) n[i]++ } }
      END {
        while ((getline l < file) > 0) { if (body) print l; else if (l == \"payload\") body = 1 }
        for (i = 1; i <= k; i++) {
          split(c[i], p, \":\"); out = \"\"
          if (n[i] == 0) out = (p[1] == \"filter\" ? \"-I \" p[2] \" 1\" : \"-A \" p[2]) \" -j \" p[3] \"\\n\"
          for (j = n[i]; j > 1; j--) out = out \"-D \" p[2] \" -j \" p[3] \"\\n\"
          if (out != \"\") printf \"*%s\\n%sCOMMIT\\n\", p[1], out
        }
      }" | iptables-restore --noflush ;;
  nftables)
    sed "1,/^payload\$/d" "$file" | nft -f - ;;
  *) echo "geartopo hook: unknown backend $backend" >&2; exit 1 ;;
esac
' geartopo-hook "$file" "$backend" || fail "$name: could not put its rules in place"
GEARTOPO_HOOK
if cmp -s "$sd/hook.new" "$sd/hook"; then rm -f "$sd/hook.new"; else chmod 755 "$sd/hook.new"; mv -f "$sd/hook.new" "$sd/hook"; fi
mkdir -p "$hd"
sed "s|@STATE_DIR@|$sd|g" > "$hd/geartopo.json.new" <<'GEARTOPO_HOOK'
{
  "version": "1.0.0",
  "hook": { "path": "@STATE_DIR@/hook", "args": ["geartopo-hook", "@STATE_DIR@"] },
  "when": { "annotations": { "^io\\.geartopo\\.rules$": ".+" } },
  "stages": ["createRuntime"]
}
GEARTOPO_HOOK
if cmp -s "$hd/geartopo.json.new" "$hd/geartopo.json"; then rm -f "$hd/geartopo.json.new"; else chmod 644 "$hd/geartopo.json.new"; mv -f "$hd/geartopo.json.new" "$hd/geartopo.json"; fi
(umask 077; cat > "$sd/rules/todo-app1.new") <<'GEARTOPO_RULES'
geartopo-rules 1 nftables
sysctl net/ipv4/ip_forward 1
sysctl net/ipv4/conf/all/route_localnet 1
payload
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
GEARTOPO_RULES
chmod 600 "$sd/rules/todo-app1.new"; mv -f "$sd/rules/todo-app1.new" "$sd/rules/todo-app1"
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
for triple in filter:INPUT:GEARTOPO-INPUT nat:OUTPUT:GEARTOPO-OUTPUT nat:POSTROUTING:GEARTOPO-POSTROUTING nat:PREROUTING:GEARTOPO-PREROUTING; do
  t=${triple%%:*}; rest=${triple#*:}; b=${rest%%:*}; o=${rest#*:}
  while nsenter -t "$pid" -n iptables -w -t "$t" -D "$b" -j "$o" 2>/dev/null; do :; done
  if nsenter -t "$pid" -n iptables -w -t "$t" -S "$o" >/dev/null 2>&1; then
    nsenter -t "$pid" -n iptables -w -t "$t" -F "$o"
    nsenter -t "$pid" -n iptables -w -t "$t" -X "$o"
  fi
done
