#!/bin/sh
# Unit checks of entrypoint.sh without etcd: fake `etcd` and `etcdctl` on PATH
# record what they are given, so the flags derived from the identity
# environment are checked exactly, and the refusals say why. Runs the script
# with busybox sh, as in the image. No root, no network.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/gtV-entrypoint-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
# etcd: print its arguments one per line
printf '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n' >"$tmp/bin/etcd"
# etcdctl: a cluster answers only if FAKE_CLUSTER is set (its member list)
cat >"$tmp/bin/etcdctl" <<'FAKE'
#!/bin/sh
echo "etcdctl $*" >>"$FAKE_LOG"
[ -n "${FAKE_CLUSTER:-}" ] || exit 1
case "$*" in
    *"member add"*)
        echo "Member a9 added"
        # the peer URL follows --peer-urls
        while [ $# -gt 0 ] && [ "$1" != --peer-urls ]; do shift; done
        echo "$2" >"$FAKE_LOG.added" ;;
    *"member remove"*) : >"$FAKE_LOG.removed" ;;
    *"member list"*)
        if [ -e "$FAKE_LOG.removed" ]; then
            printf '%b\n' "$FAKE_CLUSTER" | grep -v "^$FAKE_REMOVABLE,"
        else
            printf '%b\n' "$FAKE_CLUSTER"
        fi
        # an added member is listed unstarted, without a name, until it starts
        [ ! -e "$FAKE_LOG.added" ] || echo "a9, unstarted, , $(cat "$FAKE_LOG.added"), , false" ;;
esac
FAKE
chmod +x "$tmp/bin/etcd" "$tmp/bin/etcdctl"
export FAKE_LOG=$tmp/etcdctl.log
: >"$FAKE_LOG"

# a file, not a variable: checks run at the end of pipelines, in subshells
failed() { echo x >>"$tmp/failed"; }
entry() { env -i PATH="$tmp/bin:/usr/bin:/bin" FAKE_LOG="$FAKE_LOG" "$@" busybox sh "$here/entrypoint.sh"; }
expect_args() {   # NAME "FLAG VALUE"... < etcd's arguments, one per line
    name=$1; shift
    got=$(paste -d' ' - -)
    for want in "$@"; do
        if ! echo "$got" | grep -qxF -- "$want"; then
            echo "FAIL $name: no line '$want' in:"; echo "$got" | sed 's/^/    /'; failed; return
        fi
    done
    echo "ok   $name"
}
expect_fail() {   # NAME MESSAGE-PART, command output on stdin+stderr via $out/$rc
    if [ "$rc" -eq 0 ] || ! echo "$out" | grep -qF -- "$2"; then
        echo "FAIL $1: rc=$rc, wanted an error with '$2', got: $out"; failed
    else
        echo "ok   $1"
    fi
}
M=192.168.1.1,192.168.1.2,192.168.1.3
ID="GEARTOPO_TOPOLOGY=kv GEARTOPO_CONTAINER=etcd-2 GEARTOPO_REPLICA=2 GEARTOPO_VIEW_ETCD=192.168.1.2 GEARTOPO_VIEW_ETCD_MEMBERS=$M"

entry $ID ETCD_DATA_DIR="$tmp/data" 2>/dev/null | expect_args "new member from identity env only" \
    "--name etcd-2" \
    "--initial-advertise-peer-urls http://192.168.1.2:2380" \
    "--listen-peer-urls http://0.0.0.0:2380" \
    "--listen-client-urls http://0.0.0.0:2379" \
    "--advertise-client-urls http://192.168.1.2:2379" \
    "--initial-cluster etcd-1=http://192.168.1.1:2380,etcd-2=http://192.168.1.2:2380,etcd-3=http://192.168.1.3:2380" \
    "--initial-cluster-state new" \
    "--initial-cluster-token geartopo-kv-etcd"
grep -q -- "--endpoints http://192.168.1.1:2379,http://192.168.1.3:2379" "$FAKE_LOG" &&
    echo "ok   probes the other members only" || { echo "FAIL probe: $(cat "$FAKE_LOG")"; failed; }

: >"$FAKE_LOG"
FAKE_CLUSTER='a1, started, etcd-1, http://192.168.1.1:2380, http://192.168.1.1:2379, false\na2, started, etcd-2, http://192.168.1.2:2380, http://192.168.1.2:2379, false\na3, started, etcd-3, http://192.168.1.3:2380, http://192.168.1.3:2379, false'
entry GEARTOPO_TOPOLOGY=kv GEARTOPO_CONTAINER=etcd-4 GEARTOPO_REPLICA=4 GEARTOPO_VIEW_ETCD=192.168.1.4 \
    GEARTOPO_VIEW_ETCD_MEMBERS=$M,192.168.1.4 FAKE_CLUSTER="$FAKE_CLUSTER" ETCD_DATA_DIR="$tmp/data" 2>/dev/null |
    expect_args "a 4th member joins the running cluster" "--name etcd-4" "--initial-cluster-state existing" \
    "--initial-cluster etcd-1=http://192.168.1.1:2380,etcd-2=http://192.168.1.2:2380,etcd-3=http://192.168.1.3:2380,etcd-4=http://192.168.1.4:2380"
grep -q "member add etcd-4 --peer-urls http://192.168.1.4:2380" "$FAKE_LOG" &&
    echo "ok   ... after adding itself" || { echo "FAIL member add: $(cat "$FAKE_LOG")"; failed; }

# etcd-2 replaced: a new container, no data, its old self still a started member
rm -f "$FAKE_LOG" "$FAKE_LOG.added" "$FAKE_LOG.removed"
: >"$FAKE_LOG"
entry $ID FAKE_CLUSTER="$FAKE_CLUSTER" FAKE_REMOVABLE=a2 ETCD_DATA_DIR="$tmp/data" 2>/dev/null |
    expect_args "a replaced member rejoins" "--name etcd-2" "--initial-cluster-state existing" \
    "--initial-cluster etcd-1=http://192.168.1.1:2380,etcd-3=http://192.168.1.3:2380,etcd-2=http://192.168.1.2:2380"
grep -q "member remove a2" "$FAKE_LOG" && grep -q "member add etcd-2 --peer-urls http://192.168.1.2:2380" "$FAKE_LOG" &&
    echo "ok   ... after removing its old self and adding itself again" ||
    { echo "FAIL replaced member: $(cat "$FAKE_LOG")"; failed; }

mkdir -p "$tmp/data/member"
: >"$FAKE_LOG"
entry $ID ETCD_DATA_DIR="$tmp/data" 2>/dev/null | expect_args "restart keeps its data, no probe" "--name etcd-2"
[ ! -s "$FAKE_LOG" ] && echo "ok   ... and asks nobody" || { echo "FAIL restart probed: $(cat "$FAKE_LOG")"; failed; }

rc=0; out=$(entry GEARTOPO_CONTAINER=etcd-2 GEARTOPO_REPLICA=2 GEARTOPO_VIEW_ETCD=192.168.1.3 GEARTOPO_VIEW_ETCD_MEMBERS=$M 2>&1) || rc=$?
expect_fail "own address must be member <replica>" "member 2 of the view is 192.168.1.2, but my own view address is 192.168.1.3"
rc=0; out=$(entry GEARTOPO_CONTAINER=etcd GEARTOPO_VIEW_ETCD=192.168.1.1 GEARTOPO_VIEW_ETCD_MEMBERS=$M 2>&1) || rc=$?
expect_fail "not replicated" "GEARTOPO_REPLICA is not set"
rc=0; out=$(entry GEARTOPO_CONTAINER=etcd-1 GEARTOPO_REPLICA=1 2>&1) || rc=$?
expect_fail "in no view" "in no view"
rc=0; out=$(entry $ID GEARTOPO_VIEW_B=192.168.2.2 GEARTOPO_VIEW_B_MEMBERS=192.168.2.1,192.168.2.2 2>&1) || rc=$?
expect_fail "several views need GEARTOPO_ETCD_VIEW" "set GEARTOPO_ETCD_VIEW"
rm -rf "$tmp/data"
entry $ID GEARTOPO_VIEW_MY_B=192.168.2.2 GEARTOPO_VIEW_MY_B_MEMBERS=192.168.2.1,192.168.2.2 GEARTOPO_ETCD_VIEW=my-b \
    ETCD_DATA_DIR="$tmp/data" 2>/dev/null |
    expect_args "GEARTOPO_ETCD_VIEW picks the view (name mangled like geartopo)" \
    "--advertise-client-urls http://192.168.2.2:2379" \
    "--initial-cluster etcd-1=http://192.168.2.1:2380,etcd-2=http://192.168.2.2:2380"

if [ -e "$tmp/failed" ]; then echo "$(wc -l <"$tmp/failed") failed"; exit 1; fi
echo PASS
