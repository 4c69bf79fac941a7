#!/bin/bash
# Prove, without geartopo, that the geartopo-etcd image forms a real 3-member
# cluster when its members find each other only through same-view addresses
# set up the way geartopo sets them up:
#
#   three nodes (network namespaces on a private bridge, 198.18.0.1-3), each
#   with its own podman store, running member i with 2379/2380 published on
#   node-specific host ports; an observer on a fourth node. Inside every
#   container's namespace, iptables OUTPUT DNAT of 192.168.1.j:{2379,2380} to
#   node j's address and host port (MASQUERADE in POSTROUTING), and for the
#   member's own address a DNAT to 127.0.0.1 (route_localnet). Rules are
#   restored after `podman init` and before `podman start`, as geartopo does.
#
# Then: every member and the observer reach each of 192.168.1.1-3 on both
# ports, and the answer comes from member j; `member list` shows etcd-1..3
# started with the view peer URLs; `endpoint health --cluster` is healthy; a put
# on member 1 is read on member 3 and from the observer.
#
#   images/etcd/selftest.sh [ARCHIVE]   (root; default images/out/geartopo-etcd.tar)
#
# RULES_DIR=DIR uses restore documents rendered by geartopo itself instead of the
# rules written here: DIR/3/{etcd-1,etcd-2,etcd-3,client}.rules and DIR/4/... for
# the 4-member phase, made for host ports 4100N (2379) and 4200N (2380) on node N.
#
# Everything lives in namespaces named $PREFIX-* and a temp dir; all of it is
# removed on exit, also on failure. Needs: podman, runc, iptables, nsenter.
set -euo pipefail

PREFIX=${PREFIX:-gtV-st}
here=$(cd "$(dirname "$0")" && pwd)
archive=${1:-$here/../../images/out/geartopo-etcd.tar}
[ -f "$archive" ] || { echo "no $archive: run images/etcd/build.sh first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "selftest.sh needs root (namespaces, iptables)" >&2; exit 1; }

tmp=$(mktemp -d "/tmp/$PREFIX.XXXXXX")
nodes="1 2 3 4"
members="1 2 3"
view_members=192.168.1.1,192.168.1.2,192.168.1.3
client_hp() { echo $((41000 + $1)); }   # host port of 2379 on node $1
peer_hp() { echo $((42000 + $1)); }     # host port of 2380 on node $1

cat >"$tmp/containers.conf" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
CONF

node_ns() { echo "$PREFIX-n$1"; }
# podman as run on node $1: inside its namespace, with its own store
pn() {
    local n=$1; shift
    nsenter --net="/run/netns/$(node_ns "$n")" env CONTAINERS_CONF="$tmp/containers.conf" \
        podman --root "$tmp/n$n/root" --runroot "$tmp/n$n/run" "$@"
}

cleanup() {
    set +e
    for n in $nodes; do
        if [ -d "$tmp/n$n" ]; then
            pn "$n" rm -a -f -t 0 >/dev/null 2>&1
            pn "$n" rmi -a -f >/dev/null 2>&1
        fi
    done
    for n in $nodes br; do
        ip netns del "$PREFIX-$([ "$n" = br ] && echo br || echo "n$n")" 2>/dev/null
    done
    # podman may leave overlay mounts under the store; unmount before removing
    grep -o " $tmp[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$tmp"
}
trap cleanup EXIT

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "nodes: $PREFIX-n1..4 at 198.18.0.1-4 on a bridge in $PREFIX-br"
ip netns add "$PREFIX-br"
ip -n "$PREFIX-br" link add br0 type bridge
ip -n "$PREFIX-br" link set br0 up
for n in $nodes; do
    ns=$(node_ns "$n")
    ip netns add "$ns"
    ip -n "$PREFIX-br" link add "p$n" type veth peer name eth0 netns "$ns"
    ip -n "$PREFIX-br" link set "p$n" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "198.18.0.$n/24" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "$tmp/n$n"
    pn "$n" load -q -i "$archive" >/dev/null
done

# rules for a container on node $1 that is member $2 of the view (0: observer)
rules() {
    local self=$2 j port hp
    if [ -n "${RULES_DIR:-}" ]; then
        # geartopo's own restore documents, one per container and member count
        local n_members
        n_members=$(echo $members | wc -w)
        if [ "$self" = 0 ]; then cat "$RULES_DIR/$n_members/client.rules"; else cat "$RULES_DIR/$n_members/etcd-$self.rules"; fi
        return
    fi
    echo "*nat"
    echo ":GEARTOPO-OUTPUT - [0:0]"
    echo ":GEARTOPO-POSTROUTING - [0:0]"
    for j in $members; do
        for port in 2379 2380; do
            if [ "$j" = "$self" ]; then
                echo "-A GEARTOPO-OUTPUT -d 192.168.1.$j/32 -p tcp -m tcp --dport $port -m comment --comment \"selftest view etcd: own address\" -j DNAT --to-destination 127.0.0.1:$port"
            else
                if [ $port = 2379 ]; then hp=$(client_hp "$j"); else hp=$(peer_hp "$j"); fi
                echo "-A GEARTOPO-OUTPUT -d 192.168.1.$j/32 -p tcp -m tcp --dport $port -m comment --comment \"selftest view etcd: etcd-$j\" -j DNAT --to-destination 198.18.0.$j:$hp"
                echo "-A GEARTOPO-POSTROUTING -d 198.18.0.$j/32 -p tcp -m tcp --dport $hp -m comment --comment \"selftest view etcd: etcd-$j\" -j MASQUERADE"
            fi
        done
    done
    echo "COMMIT"
}

# create, init, rules, start: the process never runs without its links
run_container() {
    local n=$1 self=$2 name=$3; shift 3
    pn "$n" create -q --name "$name" \
        --sysctl net.ipv4.conf.all.route_localnet=1 --sysctl net.ipv4.ip_forward=1 "$@" >/dev/null
    pn "$n" init "$name" >/dev/null
    local pid
    pid=$(pn "$n" inspect -f '{{.State.Pid}}' "$name")
    rules "$n" "$self" | nsenter -t "$pid" -n iptables-restore --noflush
    if [ -n "${RULES_DIR:-}" ]; then
        # geartopo compares live chains with what it renders line for line: the
        # kernel must give back exactly the rules restored, or every plan drifts.
        diff <(rules "$n" "$self" | grep '^-A GEARTOPO-') \
             <(nsenter -t "$pid" -n iptables-save -t nat | grep '^-A GEARTOPO-') ||
            fail "$name: iptables-save does not print back the restored rules as rendered"
    fi
    for chain in OUTPUT POSTROUTING; do
        nsenter -t "$pid" -n iptables -t nat -C "$chain" -j "GEARTOPO-$chain" 2>/dev/null ||
            nsenter -t "$pid" -n iptables -t nat -A "$chain" -j "GEARTOPO-$chain"
    done
    pn "$n" start "$name" >/dev/null
    local now
    now=$(pn "$n" inspect -f '{{.State.Pid}} {{.State.Status}} {{.State.ExitCode}}' "$name")
    [ "${now%% *}" = "$pid" ] || {
        pn "$n" logs "$name" 2>&1 | tail -20
        fail "$name: pid $pid after init, now: $now (pid status exit)"
    }
}

for i in $members; do
    step "etcd-$i on node$i: 2379 -> $(client_hp "$i"), 2380 -> $(peer_hp "$i")"
    run_container "$i" "$i" "gtv-etcd-$i" \
        -p "$(client_hp "$i"):2379" -p "$(peer_hp "$i"):2380" \
        -e GEARTOPO_TOPOLOGY=kv -e "GEARTOPO_CONTAINER=etcd-$i" -e "GEARTOPO_REPLICA=$i" \
        -e "GEARTOPO_VIEW_ETCD=192.168.1.$i" -e "GEARTOPO_VIEW_ETCD_MEMBERS=$view_members" \
        localhost/geartopo-etcd:latest
done
step "observer client on node4"
run_container 4 0 gtv-client -e GEARTOPO_TOPOLOGY=kv -e GEARTOPO_CONTAINER=client \
    localhost/geartopo-etcd:latest sleep infinity

ex() { local n=$1; shift; pn "$n" exec "$@"; }
ctl() { local n=$1 name=$2; shift 2; pn "$n" exec "$name" etcdctl --dial-timeout 3s --command-timeout 5s "$@"; }
endpoints=http://192.168.1.1:2379,http://192.168.1.2:2379,http://192.168.1.3:2379

step "waiting for the cluster to be healthy"
for _ in $(seq 60); do
    if ctl 4 gtv-client --endpoints "$endpoints" endpoint health >/dev/null 2>&1; then break; fi
    sleep 1
done
ctl 4 gtv-client --endpoints "$endpoints" endpoint health || {
    for i in $members; do echo "--- etcd-$i log"; pn "$i" logs --tail 20 "gtv-etcd-$i"; done
    fail "cluster not healthy after 60s"
}

step "member list (from the observer)"
list=$(ctl 4 gtv-client --endpoints "$endpoints" member list -w simple)
echo "$list"
for i in $members; do
    echo "$list" | grep -q ", started, etcd-$i, http://192.168.1.$i:2380, http://192.168.1.$i:2379," ||
        fail "etcd-$i is not a started member with view URLs"
done
[ "$(echo "$list" | wc -l)" -eq 3 ] || fail "expected 3 members"

step "every member and the observer reach 192.168.1.1-3 on 2379 and 2380, each answered by member j"
for who in "1 gtv-etcd-1" "2 gtv-etcd-2" "3 gtv-etcd-3" "4 gtv-client"; do
    set -- $who
    for j in $members; do
        want=$(echo "$list" | grep ", etcd-$j, " | cut -d, -f1)
        got=$(ctl "$1" "$2" --endpoints "http://192.168.1.$j:2379" endpoint status -w simple | cut -d, -f2 | tr -d ' ')
        [ "$got" = "$want" ] || fail "$2: 192.168.1.$j:2379 answered by $got, not etcd-$j ($want)"
        ex "$1" "$2" wget -q -O - "http://192.168.1.$j:2380/version" | grep -q etcdserver ||
            fail "$2: no etcd peer answer at 192.168.1.$j:2380"
        echo "$2 -> 192.168.1.$j:2379 is etcd-$j ($got); 192.168.1.$j:2380 answers"
    done
done

step "endpoint health --cluster (from each member)"
for i in $members; do
    ctl "$i" "gtv-etcd-$i" --endpoints "http://192.168.1.$i:2379" endpoint health --cluster
done

step "put on etcd-1, get on etcd-3 and from the observer"
ctl 1 gtv-etcd-1 --endpoints http://192.168.1.1:2379 put /selftest "written on etcd-1"
got=$(ctl 3 gtv-etcd-3 --endpoints http://192.168.1.3:2379 get --print-value-only /selftest)
[ "$got" = "written on etcd-1" ] || fail "etcd-3 read '$got'"
got=$(ctl 4 gtv-client --endpoints http://192.168.1.2:2379 get --print-value-only --consistency=l /selftest)
[ "$got" = "written on etcd-1" ] || fail "observer read '$got'"
echo "read on etcd-3 and via 192.168.1.2 from the observer: $got"

# A replaced member (what geartopo's -/+ does, e.g. for a new image): a new
# container with the same identity and no data rejoins by removing its old self.
step "replace etcd-2: a new container, same identity, no data"
old_id=$(ctl 4 gtv-client --endpoints "$endpoints" member list -w simple | grep ', etcd-2, ' | cut -d, -f1)
pn 2 rm -f -t 0 gtv-etcd-2 >/dev/null
run_container 2 2 gtv-etcd-2 \
    -p "$(client_hp 2):2379" -p "$(peer_hp 2):2380" \
    -e GEARTOPO_TOPOLOGY=kv -e GEARTOPO_CONTAINER=etcd-2 -e GEARTOPO_REPLICA=2 \
    -e GEARTOPO_VIEW_ETCD=192.168.1.2 -e "GEARTOPO_VIEW_ETCD_MEMBERS=$view_members" \
    localhost/geartopo-etcd:latest
for _ in $(seq 60); do
    n=$(ctl 4 gtv-client --endpoints "$endpoints" member list -w simple 2>/dev/null | grep -c ', started, ' || true)
    [ "$n" = 3 ] && break
    sleep 1
done
list=$(ctl 4 gtv-client --endpoints "$endpoints" member list -w simple)
echo "$list"
new_id=$(echo "$list" | grep ', started, etcd-2, http://192.168.1.2:2380,' | cut -d, -f1) || fail "etcd-2 did not rejoin"
[ "$new_id" != "$old_id" ] || fail "etcd-2 came back under its old id $old_id"
[ "$(echo "$list" | wc -l)" -eq 3 ] || fail "not 3 members after the replacement"
got=$(ctl 2 gtv-etcd-2 --endpoints http://192.168.1.2:2379 get --print-value-only --consistency=l /selftest)
[ "$got" = "written on etcd-1" ] || fail "replaced etcd-2 read '$got'"
pn 2 logs gtv-etcd-2 2>&1 | grep 'geartopo-etcd:' || true
echo "etcd-2 rejoined as $new_id (was $old_id) and has the data"

# Scaling: a 4th member on node4 beside the observer. The existing members and
# the observer get the rules for 192.168.1.4 by a restore into their running
# namespaces (no restart: same pids); etcd-4 joins the running cluster by itself.
pid_of() { pn "$1" inspect -f '{{.State.Pid}}' "$2"; }
where="1:gtv-etcd-1 2:gtv-etcd-2 3:gtv-etcd-3 4:gtv-client"
before=""
for w in $where; do before="$before $(pid_of "${w%%:*}" "${w#*:}")"; done

restore_all() {   # re-render every existing container's rules for the current $members
    local w n name self
    for w in $where; do
        n=${w%%:*} name=${w#*:}
        self=0; case $name in gtv-etcd-*) self=${name#gtv-etcd-} ;; esac
        rules "$n" "$self" | nsenter -t "$(pid_of "$n" "$name")" -n iptables-restore --noflush
    done
}

step "scale to 4: rules for 192.168.1.4 in the running containers, then etcd-4 on node4"
members="1 2 3 4"
view_members=$view_members,192.168.1.4
restore_all
run_container 4 4 gtv-etcd-4 \
    -p "$(client_hp 4):2379" -p "$(peer_hp 4):2380" \
    -e GEARTOPO_TOPOLOGY=kv -e GEARTOPO_CONTAINER=etcd-4 -e GEARTOPO_REPLICA=4 \
    -e GEARTOPO_VIEW_ETCD=192.168.1.4 -e "GEARTOPO_VIEW_ETCD_MEMBERS=$view_members" \
    localhost/geartopo-etcd:latest
endpoints=$endpoints,http://192.168.1.4:2379
for _ in $(seq 60); do
    n=$(ctl 4 gtv-client --endpoints "$endpoints" member list -w simple 2>/dev/null | grep -c ', started, ' || true)
    [ "$n" = 4 ] && break
    sleep 1
done
list=$(ctl 4 gtv-client --endpoints "$endpoints" member list -w simple)
echo "$list"
echo "$list" | grep -q ", started, etcd-4, http://192.168.1.4:2380, http://192.168.1.4:2379," ||
    fail "etcd-4 did not join"
pn 4 logs gtv-etcd-4 2>&1 | grep 'geartopo-etcd:' || true
ctl 1 gtv-etcd-1 --endpoints "$endpoints" endpoint health
got=$(ctl 4 gtv-etcd-4 --endpoints http://192.168.1.4:2379 get --print-value-only /selftest)
[ "$got" = "written on etcd-1" ] || fail "etcd-4 read '$got'"
want=$(echo "$list" | grep ", etcd-4, " | cut -d, -f1)
got=$(ctl 1 gtv-etcd-1 --endpoints http://192.168.1.4:2379 endpoint status -w simple | cut -d, -f2 | tr -d ' ')
[ "$got" = "$want" ] || fail "192.168.1.4 from etcd-1 answered by $got, not etcd-4"
after=""
for w in $where; do after="$after $(pid_of "${w%%:*}" "${w#*:}")"; done
[ "$before" = "$after" ] || fail "pids changed:$before ->$after"
echo "etcd-4 joined, answers at 192.168.1.4 from etcd-1, has the data; pids unchanged:$after"

step "back to 3: member remove etcd-4, remove it, drop 192.168.1.4 from the rules"
ctl 1 gtv-etcd-1 --endpoints http://192.168.1.1:2379 member remove "$want"
pn 4 rm -f -t 0 gtv-etcd-4 >/dev/null
members="1 2 3"
restore_all
for w in $where; do
    n=${w%%:*} name=${w#*:}
    if nsenter -t "$(pid_of "$n" "$name")" -n iptables-save -t nat | grep -q 192.168.1.4; then
        fail "$name still has rules for 192.168.1.4"
    fi
done
if ctl 1 gtv-etcd-1 --endpoints http://192.168.1.4:2379 --dial-timeout 2s endpoint status >/dev/null 2>&1; then
    fail "192.168.1.4 still answers"
fi
endpoints=http://192.168.1.1:2379,http://192.168.1.2:2379,http://192.168.1.3:2379
ctl 4 gtv-client --endpoints "$endpoints" member list -w simple
[ "$(ctl 4 gtv-client --endpoints "$endpoints" member list -w simple | wc -l)" -eq 3 ] || fail "not 3 members"
ctl 4 gtv-client --endpoints "$endpoints" endpoint health
after=""
for w in $where; do after="$after $(pid_of "${w%%:*}" "${w#*:}")"; done
[ "$before" = "$after" ] || fail "pids changed:$before ->$after"

step "PASS"
