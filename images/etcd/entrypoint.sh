#!/bin/sh
# geartopo-etcd: start one etcd member configured only from the identity
# environment geartopo gives every container, so that one image and one
# (default) command configure every member of a same-view cluster:
#
#   GEARTOPO_CONTAINER            etcd-2        this member's name
#   GEARTOPO_REPLICA              2             its place in the view
#   GEARTOPO_VIEW_<NAME>          192.168.1.2   its own view address
#   GEARTOPO_VIEW_<NAME>_MEMBERS  192.168.1.1,192.168.1.2,192.168.1.3
#
# Member k of the view is named <base>-k, where <base> is GEARTOPO_CONTAINER
# without its "-<replica>" suffix: the view's members are the replicas of one
# replicated container, in order (that is what [views.X] members = ["etcd"]
# expands to). If the container belongs to several views, GEARTOPO_ETCD_VIEW
# names the one to use (the view name as written in the topology).
#
# First boot of the initial members: --initial-cluster-state new, every
# member of the view in --initial-cluster. A member added later (scaling the
# replicas up) finds a cluster already answering at the other view addresses
# and joins it: it adds itself with `etcdctl member add` unless an operator
# already did, then starts with --initial-cluster-state existing. A member
# replaced by a new container (its data gone, its old self still a started
# member) removes its old self first, then joins the same way. A member whose
# data directory already holds a member just restarts (etcd ignores the
# initial-* flags then).
set -eu

die() { echo "geartopo-etcd: $*" >&2; exit 1; }
log() { echo "geartopo-etcd: $*" >&2; }

[ -n "${GEARTOPO_CONTAINER:-}" ] || die "GEARTOPO_CONTAINER is not set: run me from a geartopo topology"
[ -n "${GEARTOPO_REPLICA:-}" ] || die "GEARTOPO_REPLICA is not set: the etcd container must be replicated (replicas = N)"

# Which view: the one named by GEARTOPO_ETCD_VIEW, else the only one we are in.
if [ -n "${GEARTOPO_ETCD_VIEW:-}" ]; then
    var=GEARTOPO_VIEW_$(echo "$GEARTOPO_ETCD_VIEW" | tr 'a-z' 'A-Z' | sed 's/[^A-Z0-9]/_/g')
else
    vars=$(env | sed -n 's/^\(GEARTOPO_VIEW_[A-Z0-9_]*\)_MEMBERS=.*/\1/p')
    [ -n "$vars" ] || die "no GEARTOPO_VIEW_<NAME>_MEMBERS: the container is in no view"
    [ "$(echo "$vars" | wc -l)" -eq 1 ] || die "in several views ($(echo $vars)); set GEARTOPO_ETCD_VIEW"
    var=$vars
fi
eval "own=\${$var:-}"
eval "members=\${${var}_MEMBERS:-}"
[ -n "$own" ] || die "$var (own view address) is not set"
[ -n "$members" ] || die "${var}_MEMBERS is not set"

name=$GEARTOPO_CONTAINER
replica=$GEARTOPO_REPLICA
base=${name%-"$replica"}
[ "$base" != "$name" ] || die "GEARTOPO_CONTAINER=$name does not end in -$replica"

peer_port=${ETCD_PEER_PORT:-2380}
client_port=${ETCD_CLIENT_PORT:-2379}
data_dir=${ETCD_DATA_DIR:-/var/lib/etcd/data}
token=${ETCD_INITIAL_CLUSTER_TOKEN:-geartopo-${GEARTOPO_TOPOLOGY:-etcd}-$base}

# The full cluster from the member list (k-th address is <base>-k), checking
# that our own address is where our replica number says it is.
cluster=""
others=""
k=0
for addr in $(echo "$members" | tr ',' ' '); do
    k=$((k + 1))
    cluster="${cluster:+$cluster,}$base-$k=http://$addr:$peer_port"
    if [ "$k" -eq "$replica" ]; then
        [ "$addr" = "$own" ] || die "member $k of the view is $addr, but my own view address is $own"
    else
        others="${others:+$others,}http://$addr:$client_port"
    fi
done
[ "$replica" -le "$k" ] || die "replica $replica but only $k view members"

# name of the member whose peer URL is $1, from its view address
name_of() {
    addr=${1#http://}
    addr=${addr%:*}
    j=0
    for a in $(echo "$members" | tr ',' ' '); do
        j=$((j + 1))
        if [ "$a" = "$addr" ]; then echo "$base-$j"; return 0; fi
    done
    return 1
}

# The cluster's members, one line each: ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, LEARNER.
members_now() {
    etcdctl --endpoints "$others" --dial-timeout 2s --command-timeout 3s member list -w simple
}

# `etcdctl member ARGS` until CHECK (a shell condition on $list, the member
# list) holds. A change is refused while the cluster is not fully healthy
# (etcd's strict reconfiguration check: "unhealthy cluster" right after another
# member joined, for example), and a change may be applied even though its
# answer was lost: so retry for a minute, judging by the member list.
reconfigure() {
    check=$1; shift
    tries=0
    while :; do
        list=$(members_now) || list=""
        if [ -n "$list" ] && eval "$check"; then return 0; fi
        tries=$((tries + 1))
        [ "$tries" -le 30 ] || die "etcdctl member $* kept failing"
        if ! etcdctl --endpoints "$others" --dial-timeout 2s --command-timeout 10s member "$@" >&2; then
            log "member $1 refused, retrying in 2s ($tries)"
            sleep 2
        fi
    done
}
listed() { echo "$list" | cut -d, -f4 | tr -d ' ' | grep -qxF "$my_peer"; }
id_listed() { echo "$list" | cut -d, -f1 | tr -d ' ' | grep -qxF "$1"; }

my_peer=http://$own:$peer_port
state=new
if [ -d "$data_dir/member" ]; then
    log "restarting $name from $data_dir"
elif [ -n "$others" ] && list=$(etcdctl --endpoints "$others" --dial-timeout 2s --command-timeout 3s \
        member list -w simple 2>/dev/null) && [ -n "$list" ]; then
    # A cluster already answers: we are joining it (scale up, or a fresh
    # data directory). Lines: ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, LEARNER.
    state=existing
    # Our peer URL listed with a name: that member started once, and its data is
    # gone (the container was replaced). Coming back under the same member id
    # without its log is unsafe for raft; etcd's way is remove, then add again.
    mine=$(echo "$list" | awk -F', *' -v p="$my_peer" '$4 == p')
    if [ -n "$mine" ] && [ -n "$(echo "$mine" | cut -d, -f3 | tr -d ' ')" ]; then
        id=$(echo "$mine" | cut -d, -f1 | tr -d ' ')
        log "$name ($id) was a started member and its data is gone: member remove, then add again"
        reconfigure '! id_listed "$id"' remove "$id"
    fi
    if ! listed; then
        log "joining the running cluster: member add $name $my_peer"
        reconfigure listed add "$name" --peer-urls "$my_peer"
    fi
    cluster=""
    for peer in $(echo "$list" | cut -d, -f4 | tr -d ' '); do
        n=$(name_of "$peer") || die "cluster member $peer is not in the view ($members)"
        cluster="${cluster:+$cluster,}$n=$peer"
    done
    case ",$cluster," in
        *",$name=$my_peer,"*) ;;
        *) die "the running cluster does not list $my_peer after member add: $cluster" ;;
    esac
    log "joining as $name, cluster $cluster"
else
    log "starting $name in a new cluster $cluster"
fi

exec etcd \
    --name "$name" \
    --data-dir "$data_dir" \
    --listen-peer-urls "http://0.0.0.0:$peer_port" \
    --listen-client-urls "http://0.0.0.0:$client_port" \
    --initial-advertise-peer-urls "$my_peer" \
    --advertise-client-urls "http://$own:$client_port" \
    --initial-cluster "$cluster" \
    --initial-cluster-state "$state" \
    --initial-cluster-token "$token" \
    "$@"
