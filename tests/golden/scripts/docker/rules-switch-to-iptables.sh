set -e
[ "$(docker inspect -f '{{.State.Running}}' 0123456789abcdef)" = true ] || docker start 0123456789abcdef >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' 0123456789abcdef)
[ "$pid" -gt 0 ] || { echo 0123456789abcdef" has no network namespace (state: $(docker inspect -f '{{.State.Status}}' 0123456789abcdef))" >&2; exit 1; }
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
cat > "$sd/runtime.new" <<'GEARTOPO_RUNTIME'
#!/bin/sh
# geartopo-runtime 1
# Written by geartopo (docs/durable.md); plan shows a change to it as drift and
# apply puts it back. dockerd runs it in place of runc for the containers geartopo
# creates with `--runtime geartopo`, once `geartopo node prepare` registered it
# (daemon.json "runtimes"). Docker has no hooks directory: at `create` of a
# container carrying the label geartopo.rules, this adds geartopo's hook (the
# program beside this one) to the bundle's config.json as a createRuntime hook,
# with the annotation the hook reads, then execs runc. runc runs the hook after
# the container's namespaces exist and before its process runs, at every start
# (docker run, docker restart, a restart policy, dockerd started again).
# Anything else (another command, a container without the label) is runc's alone:
# exec'd unchanged, without reading a file.
set -u
dir=${0%/*}
# The command is the first argument that is not an option or an option's value.
cmd='' bundle='' skip='' want=''
for a; do
  if [ -n "$skip" ]; then skip=; continue; fi
  if [ -n "$want" ]; then bundle=$a; want=; continue; fi
  if [ -z "$cmd" ]; then
    case $a in
      --root | --log | --log-format | --criu | --rootless) skip=1 ;;
      -*) ;;
      *) cmd=$a ;;
    esac
  else
    case $a in
      --bundle | -b) want=1 ;;
      --bundle=*) bundle=${a#--bundle=} ;;
    esac
  fi
done
[ "$cmd" = create ] || exec runc "$@"
for id; do :; done
fail() {
  echo "geartopo runtime: $*" >&2
  exit 1
}
cfg=${bundle:-.}/config.json
case $id in *[!0-9a-f]* | '') exec runc "$@" ;; esac
case $dir in
  /*[!A-Za-z0-9_./-]* | [!/]*) fail "$dir is not an absolute path of A-Z a-z 0-9 _ . - /" ;;
esac
# One awk does it all (every process counts: a start waits for this): docker
# mounts the container's hostname file from DATA_ROOT/containers/ID/, and its
# config.v2.json beside it holds the container's labels. Labelled geartopo.rules:
# the hook goes first among the createRuntime hooks, with the annotation the
# hook reads, each key made where the document has none; a document that has
# the annotation already is left as it is. Exit 3: not geartopo's.
# Compact JSON: a quote inside a string is escaped (\"), so no key matches
# inside a value.
awk -v cfg="$cfg" -v id="$id" -v dir="$dir" '
function rep(c, old, new,  i) { i = index(c, old); return substr(c, 1, i - 1) new substr(c, i + length(old)) }
BEGIN {
  while ((getline l < cfg) > 0) c = c l; close(cfg)
  i = index(c, "/containers/" id "/hostname\""); if (!i) exit 3
  pre = substr(c, 1, i - 1); s = "\"source\":\""; j = 0
  while ((p = index(substr(pre, j + 1), s)) > 0) j += p
  if (!j) exit 3
  v2 = substr(pre, j + length(s)) "/containers/" id "/config.v2.json"
  while ((getline l < v2) > 0) t = t l; close(v2)
  k = "\"geartopo.rules\":\""; i = index(t, k); if (!i) exit 3
  name = substr(t, i + length(k)); name = substr(name, 1, index(name, "\"") - 1)
  if (name == "" || name ~ /^\./ || name ~ /[^A-Za-z0-9_.-]/) {
    print "geartopo runtime: invalid rules file name in the label geartopo.rules: " name > "/dev/stderr"; exit 1
  }
  if (index(c, "\"io.geartopo.rules\":")) exit 0
  if (substr(c, 1, 1) != "{") { print "geartopo runtime: " cfg " is not a JSON object" > "/dev/stderr"; exit 1 }
  h = "{\"path\":\"" dir "/hook\",\"args\":[\"geartopo-hook\",\"" dir "\"]}"
  a = "\"io.geartopo.rules\":\"" name "\""
  if (index(c, "\"createRuntime\":[]")) c = rep(c, "\"createRuntime\":[]", "\"createRuntime\":[" h "]")
  else if (index(c, "\"createRuntime\":[")) c = rep(c, "\"createRuntime\":[", "\"createRuntime\":[" h ",")
  else if (index(c, "\"hooks\":{}")) c = rep(c, "\"hooks\":{}", "\"hooks\":{\"createRuntime\":[" h "]}")
  else if (index(c, "\"hooks\":{")) c = rep(c, "\"hooks\":{", "\"hooks\":{\"createRuntime\":[" h "],")
  else c = "{\"hooks\":{\"createRuntime\":[" h "]}," substr(c, 2)
  if (index(c, "\"annotations\":{}")) c = rep(c, "\"annotations\":{}", "\"annotations\":{" a "}")
  else if (index(c, "\"annotations\":{")) c = rep(c, "\"annotations\":{", "\"annotations\":{" a ",")
  else c = "{\"annotations\":{" a "}," substr(c, 2)
  printf "%s\n", c > cfg
  if (close(cfg)) { print "geartopo runtime: cannot write " cfg > "/dev/stderr"; exit 1 }
  exit 0
}'
case $? in
  0) [ -x "$dir/hook" ] || fail "the hook $dir/hook is missing; geartopo apply writes it again" ;;
  3) ;;
  *) exit 1 ;;
esac
exec runc "$@"
GEARTOPO_RUNTIME
if cmp -s "$sd/runtime.new" "$sd/runtime"; then rm -f "$sd/runtime.new"; else chmod 755 "$sd/runtime.new"; mv -f "$sd/runtime.new" "$sd/runtime"; fi
(umask 077; cat > "$sd/rules/todo-app1.new") <<'GEARTOPO_RULES'
geartopo-rules 1 iptables
sysctl net/ipv4/ip_forward 1
sysctl net/ipv4/conf/all/route_localnet 1
payload
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
GEARTOPO_RULES
chmod 600 "$sd/rules/todo-app1.new"; mv -f "$sd/rules/todo-app1.new" "$sd/rules/todo-app1"
printf '{"pid":%s,"annotations":{"io.geartopo.rules":"%s"}}\n' "$pid" todo-app1 | "$sd/hook" "$sd"
nsenter -t "$pid" -n nft -f - <<'GEARTOPO_NFT'
table ip geartopo {}
delete table ip geartopo
GEARTOPO_NFT
