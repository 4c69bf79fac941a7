d="${GEARTOPO_RUN_DIR:-/run/geartopo}"; mkdir -p "$d" || exit 1
if mkdir "$d/apply.lock" 2>/dev/null; then
  printf '%s\n' 'geartopo apply of todo by root@host1 pid 42 since unix time 0' > "$d/apply.lock/holder"
  printf '%s\n' topology=todo user=root host=host1 pid=42 start_ticks=4242 boot_id=0a1b2c3d-0000-4000-8000-000000000000 since=0 > "$d/apply.lock/info"
else
  echo "locked by: $(cat "$d/apply.lock/holder" 2>/dev/null) (lock $d/apply.lock)" >&2
  sed 's/^/lock-info: /' "$d/apply.lock/info" >&2 2>/dev/null || true
  exit 75
fi
obs=$(
set -u
# The runtime's network (a second runtime run) is read beside the rest.
nets=$(mktemp "${TMPDIR:-/tmp}/geartopo-nets.XXXXXX" 2>/dev/null) || nets=
if [ -n "$nets" ]; then podman network inspect podman --format '{{range .Subnets}}{{.Subnet}} {{end}}' >"$nets" 2>/dev/null & netpid=$!; fi
echo "@@geartopo tcp"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo "@@geartopo udp"
cat /proc/net/udp /proc/net/udp6 2>/dev/null
echo "@@geartopo list"
ps=$(podman ps -a --format json) || { echo "geartopo: 'podman ps' failed on this node" >&2; exit 3; }
printf '%s\n' "$ps"
# `ID PID` of this topology's containers with a process, from that JSON as podman
# indents it (the parser checks that every such container's namespace was read).
ours=$(printf '%s\n' "$ps" | awk -v t=todo '$0 == "  {" { id = ""; pid = 0; ours = 0 } substr($0, 1, 10) == "    \"Id\": " { id = $2; gsub(/[",]/, "", id) } substr($0, 1, 11) == "    \"Pid\": " { pid = $2 + 0 } $0 == "      \"geartopo.topology\": \"" t "\"" || $0 == "      \"geartopo.topology\": \"" t "\"," { ours = 1 } ($0 == "  }" || $0 == "  },") && ours && pid > 0 && id != "" { print id, pid }')
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
  echo "@@geartopo subnets $(podman network inspect podman --format '{{range .Subnets}}{{.Subnet}} {{end}}' 2>/dev/null)"
fi
sd="${GEARTOPO_STATE_DIR:-/var/lib/geartopo}"; hd="${GEARTOPO_HOOKS_DIR:-/etc/containers/oci/hooks.d}"; sysd=none
if [ -d /run/systemd/system ]; then sysd=$(systemctl is-enabled podman-restart.service 2>/dev/null) || true; fi
case "$sd$hd" in *[!A-Za-z0-9_./-]*) sd=-; hd=- ;; esac
echo "@@geartopo durable $sd $hd ${sysd:-unknown}"
# One stat and one sha256sum for all files: a node may hold a thousand.
set --
for f in "$sd/hook" "$sd/runtime" "$hd/geartopo.json" "$sd"/rules/*; do [ -f "$f" ] && set -- "$@" "$f"; done
if [ "$#" -gt 0 ]; then stat -c 'mode %a %n' "$@"; sha256sum "$@" | sed 's/^/sha /'; fi
echo "@@geartopo end"
) || exit $?
printf '%s\n' "$obs" | awk -v t=todo -v lh=tcp:C350 -v pp=tcp:50000 -v nm=todo-app1 -v fu=0123456789abcdef -v fl=todo-app1 'function add(set, list,   a, n, i) { n = split(list, a, " "); for (i = 1; i <= n; i++) set[a[i]] = 1 }
function pad(n) { return sprintf("%06d", n) }
function flush(   i) {
  if (ours && id != "") for (i = 1; i <= nb; i++) if (bc[i] == "i" || (id in FU)) print bc[i] " " id " " bs[i] " " bl[i]
  nb = 0; ni = 0; nl = 0; id = ""; ours = 0; key = ""
}
BEGIN { add(LH, lh); add(PP, pp); add(NM, nm); add(FU, fu); add(FL, fl) }
substr($0, 1, 11) == "@@geartopo " {
  if (sec == "list") flush()
  sec = $2; k = 0
  if (sec == "ns") { cid = $3; nk = 0 }
  if (sec == "ns" || sec == "hostns" || sec == "sysctl" || sec == "nft") { if (cid in FU) print "n " cid " " pad(nk++) " " $0 }
  else if (sec == "subnets" || sec == "durable" || sec == "end") print "x " $0
  next
}
sec == "tcp" || sec == "udp" {
  if (NF >= 4 && $4 == (sec == "tcp" ? "0A" : "07")) { p = $2; sub(/.*:/, "", p); if ((sec ":" p) in LH) print "listen " sec " " p }
  next
}
sec == "sysctl" { if ((cid in FU) && (index($0, "GEARTOPO") || substr($0, 1, 1) == "*")) print "n " cid " " pad(nk++) " " $0; next }
sec == "nft" { if (cid in FU) print "n " cid " " pad(nk++) " " $0; next }
sec == "nodefilter" { print "x nodefilter " pad(k++) " " $0; next }
sec == "durable" {
  p = $3; f = p; sub(/.*\//, "", f); d = ""
  if (index(p, "/")) { d = p; sub(/\/[^\/]*$/, "", d) }
  if (d !~ /\/rules$/ || (f in FL)) print "x " $0
  next
}
sec == "list" {
  l = $0; sub(/,$/, "", l)
  if (l == "  {") { flush(); next }
  if (l == "  }") { flush(); next }
  if (substr(l, 1, 5) == "    \"") { key = substr(l, 6); sub(/".*/, "", key) }
  if (key == "Id" && substr(l, 1, 11) == "    \"Id\": \"") { id = substr(l, 12); sub(/"$/, "", id) }
  if (key == "Labels" && l == "      \"geartopo.topology\": \"" t "\"") ours = 1
  if (key == "Names" && substr(l, 1, 7) == "      \"") { n = substr(l, 8); sub(/"$/, "", n); if (n in NM) print "name " n }
  if (key == "Ports") {
    if (l == "      {") { hp = 0; rg = 1; pr = "" }
    else if (substr(l, 1, 21) == "        \"host_port\": ") hp = substr(l, 22) + 0
    else if (substr(l, 1, 17) == "        \"range\": ") rg = substr(l, 18) + 0
    else if (substr(l, 1, 21) == "        \"protocol\": \"") { pr = substr(l, 22); sub(/"$/, "", pr) }
    else if (l == "      }") { if (rg < 1) rg = 1; for (i = 0; i < rg && hp > 0 && hp + i <= 65535; i++) if ((pr ":" (hp + i)) in PP) print "publish " pr " " (hp + i) }
  }
  c = ""
  if (key == "Id" || key == "Image" || key == "Labels" || key == "Names") c = "i"
  else if (key == "State" || key == "Pid" || key == "Ports") c = "l"
  if (c != "") { nb++; bc[nb] = c; bl[nb] = l; bs[nb] = pad(c == "i" ? ni++ : nl++) }
  next
}
' | LC_ALL=C sort -u | sha256sum | sed 's/ .*//; s/^/@@geartopo digest /'
