#!/usr/bin/env bash
# Issue 18's benchmarks on a lab of its own (gtp-lab: 20 nodes at 198.19.0.1-20,
# never the end-to-end lab's 198.18.0.1-5), in one run:
#   read   node-side CPU seconds of one read (the observe script as geartopo sends
#          it) at 1, 10 and 100 containers, this version's script against the
#          script of GEARTOPO_OLD_OBSERVE (a golden observe.sh, e.g. main's)
#   floor  on node01, one container of 1,000 links: the floor (one SSH handshake,
#          one `podman ps -a --format json`, one `iptables-save`, one restore of
#          the same rules, each timed, the last three on the node) against
#          geartopo's whole apply of a 1,000-link change and its no-op plan
#   wide   plan against 1 and 20 nodes (one container, one link each)
#   ansible the whole apply of bench/gen.py's gtb-apply (4 nodes, 8 containers,
#          40 links) by geartopo and by Ansible, and beside it the runtime's own
#          create/init/start of the same 8 containers, timed on the nodes
# Usage, as root: bash bench/floor.sh [read] [floor] [wide] [ansible]  (default: all)
# GEARTOPO_BIN: a geartopo binary to use instead of building one (release).
# Holds /tmp/geartopo-e2e.lock while its lab is up (clean CPU figures, no clash
# with the end-to-end tests); always takes the lab down, also on failure.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
require_root "$@"
cd "$repo"
parts=${*:-read floor wide ansible}
want() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
find_cargo

gt=${GEARTOPO_BIN:-}
if [ -z "$gt" ]; then
  step "building geartopo (release)"
  (cargo build --quiet --release --bin geartopo)
  gt=$target_dir/release/geartopo
fi
[ -f images/out/geartopo-busybox.tar ] || bash images/build.sh
NET=198.19.0
export GTB_NET=$NET GTB_LAB=gtp-lab
out=$(mktemp -d /tmp/gtP-bench.XXXXXX)
python3 bench/gen.py inputs "$out"
lab=$out/lab.toml
inlab() { "$gt" lab exec "$lab" -- "$@"; }
onnode() { local n=$1; shift; "$gt" lab exec "$lab" --node "$n" -- "$@"; }

exec 9>/tmp/geartopo-e2e.lock
echo "waiting for /tmp/geartopo-e2e.lock"
flock 9
cleanup() {
  local rc=$?
  step "cleaning up"
  for f in "$out"/t-*.toml "$out/apply.toml"; do
    [ -f "$f" ] && inlab "$gt" destroy "$f" --auto-approve >/dev/null 2>&1 || true
  done
  [ -f "$out/remove.yml" ] && inlab "$venv/bin/ansible-playbook" "$out/remove.yml" >/dev/null 2>&1 || true
  for s in "${ANSIBLE_HOME:-/nonexistent}"/cp/*; do
    [ -S "$s" ] && inlab ssh -O exit -S "$s" x >/dev/null 2>&1 || true
  done
  "$gt" lab down "$lab" || true
  rm -rf "$out"
  exit $rc
}
trap cleanup EXIT
trap "exit 130" INT TERM

now() { date +%s.%N; }
# Seconds that "$@" took (output to $out/last.log, shown when it fails).
secs() {
  local s e
  s=$(now)
  if ! "$@" >"$out/last.log" 2>&1; then
    echo "bench: failed: $*" >&2
    tail -30 "$out/last.log" >&2
    return 1
  fi
  e=$(now)
  echo "$e - $s" | bc
}
fastest() {
  local n=$1 best="" t
  shift
  for _ in $(seq "$n"); do
    t=$(secs "$@")
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
# The smallest of the numbers on stdin.
least() { sort -g | head -1; }
ratio() { echo "scale=2; $1 / $2" | bc; }
busy() { awk '/^cpu /{print ($2+$3+$4+$7+$8) / 100}' /proc/stat; }

step "a lab of 20 nodes ($NET.1-20)"
"$gt" lab down "$lab" >/dev/null 2>&1 || true
"$gt" lab up "$lab" >/dev/null
"$gt" lab load "$lab" images/out/geartopo-busybox.tar localhost/geartopo-busybox:latest >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# A topology named $1 on node01 with $2 containers, each with one raw link.
read_topology() {
  local name=$1 n=$2 i
  {
    printf 'name = "%s"\n\n[nodes.node01]\naddress = "%s.1"\n' "$name" "$NET"
    for i in $(seq -w 1 "$n"); do
      printf '\n[containers.r%s]\nnode = "node01"\nimage = "localhost/geartopo-busybox:latest"\n' "$i"
      printf 'command = ["sleep", "1000000"]\nlinks = ["127.0.0.1:7001:%s.2:50000"]\n' "$NET"
    done
  } >"$out/t-$name.toml"
}

if want read; then
  step "node-side CPU of one read (observe script on node01), fastest of 5"
  # The read of a topology without private ports (this one): no network inspect.
  new=tests/golden/scripts/podman/observe-no-subnets.sh
  old=${GEARTOPO_OLD_OBSERVE:-}
  printf '%10s %14s %14s %10s\n' containers "this cpu s" "old cpu s" "old/this"
  for n in 1 10 100; do
    read_topology "gtp-r$n" "$n"
    inlab "$gt" apply "$out/t-gtp-r$n.toml" --auto-approve --parallelism 1 >/dev/null
    # The golden scripts read topology `todo`; the same script for this one.
    sed "s/=todo\([ ')]\)/=gtp-r$n\1/g" "$new" >"$out/new.sh"
    grep -q "gtp-r$n" "$out/new.sh"
    cpu() {
      for _ in 1 2 3 4 5; do
        onnode node01 bash -c 'sh -s <"$1" >"$1.out"; times' _ "$1" | tail -1 |
          awk '{ gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }'
      done | least
    }
    c_new=$(cpu "$out/new.sh")
    grep -c '^@@geartopo ns' "$out/new.sh.out" | grep -qx "$n" || { echo "bench: new script did not read $n namespaces" >&2; exit 1; }
    c_old=-
    if [ -n "$old" ]; then
      sed "s/=todo\([ ')]\)/=gtp-r$n\1/g" "$old" >"$out/old.sh"
      c_old=$(cpu "$out/old.sh")
    fi
    if [ "$c_old" = - ]; then
      printf '%10s %14.3f %14s %10s\n' "$n" "$c_new" - -
    else
      printf '%10s %14.3f %14.3f %9.1fx\n' "$n" "$c_new" "$c_old" "$(ratio "$c_old" "$c_new")"
    fi
    inlab "$gt" destroy "$out/t-gtp-r$n.toml" --auto-approve >/dev/null
  done
fi

# One container on node01 with 1,000 links, to $NET.2 ports $2+i.
big_topology() {
  local file=$1 base=$2 i
  {
    printf 'name = "gtp-floor"\n\n[nodes.node01]\naddress = "%s.1"\n' "$NET"
    printf '\n[containers.big]\nnode = "node01"\nimage = "localhost/geartopo-busybox:latest"\n'
    printf 'command = ["sleep", "1000000"]\nlinks = [\n'
    for i in $(seq 0 999); do
      printf '  "127.0.0.1:%s:%s.2:%s",\n' $((10000 + i)) "$NET" $((base + i))
    done
    printf ']\n'
  } >"$file"
}

if want floor; then
  step "the floor against a whole apply of a 1,000-link change and a no-op plan (node01)"
  big_topology "$out/t-floor-a.toml" 20000
  big_topology "$out/t-floor-b.toml" 30000
  inlab "$gt" apply "$out/t-floor-a.toml" --auto-approve >/dev/null
  # The floor's four steps, each the fastest of 5.
  hs=$(fastest 5 inlab bash -c 'ssh -i "$GEARTOPO_IDENTITY" -o UserKnownHostsFile="$GEARTOPO_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -o BatchMode=yes root@'"$NET"'.1 true')
  # shellcheck disable=SC2016 # expanded on the node
  onnode node01 bash -c '
    pid=$(podman inspect -f "{{.State.Pid}}" gtp-floor-big)
    t() { local s e best=; for _ in 1 2 3 4 5; do s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N);
      best=$(printf "%s\n%s\n" "$best" "$(echo "$e - $s" | bc)" | grep . | sort -g | head -1); done; echo "$best"; }
    nsenter -t "$pid" -n iptables-save >'"$out"'/saved
    echo "ps $(t podman ps -a --format json)"
    echo "save $(t nsenter -t "$pid" -n iptables-save)"
    echo "restore $(t sh -c "nsenter -t $pid -n iptables-restore <'"$out"'/saved")"
    echo "rules $(grep -c "^-A" '"$out"'/saved)"
  ' >"$out/floor.txt"
  ps_s=$(awk '$1 == "ps" {print $2}' "$out/floor.txt")
  save_s=$(awk '$1 == "save" {print $2}' "$out/floor.txt")
  restore_s=$(awk '$1 == "restore" {print $2}' "$out/floor.txt")
  rules=$(awk '$1 == "rules" {print $2}' "$out/floor.txt")
  floor=$(echo "$hs + $ps_s + $save_s + $restore_s" | bc)
  # The whole apply of a 1,000-link change: b, a, b, a, b (each changes every link).
  best=""
  for f in b a b a b; do
    t=$(secs inlab "$gt" apply "$out/t-floor-$f.toml" --auto-approve)
    grep -q "1 to change\|~ big\|changed" "$out/last.log" || true
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  apply_s=$best
  plan_s=$(fastest 5 inlab "$gt" plan "$out/t-floor-b.toml" --detailed-exitcode)
  grep -q "No changes" "$out/last.log" || { echo "bench: the plan after apply was not a no-op" >&2; exit 1; }
  echo "rules in the container's tables: $rules"
  printf '%-40s %8.3f s\n' "SSH handshake (ssh node true)" "$hs" \
    "podman ps -a --format json (on node)" "$ps_s" \
    "iptables-save (on node)" "$save_s" \
    "iptables-restore of the same (on node)" "$restore_s" \
    "floor (sum)" "$floor" \
    "geartopo apply, 1,000-link change" "$apply_s" \
    "geartopo plan, no-op" "$plan_s"
  echo "apply / floor: $(ratio "$apply_s" "$floor")x (target 1.5x)"
  echo "no-op plan / (handshake + ps): $(ratio "$plan_s" "$(echo "$hs + $ps_s" | bc)")x (target 1.3x)"
  # Where the apply's time goes: when each round trip starts (GEARTOPO_TRACE),
  # seconds from the start of the apply.
  echo "round trips of one apply (s from its start):"
  s0=$(now)
  { GEARTOPO_TRACE=1 inlab "$gt" apply "$out/t-floor-a.toml" --auto-approve 2>&1 >/dev/null; echo "end"; } |
    while read -r l; do printf '  %6.3f %s\n' "$(echo "$(now) - $s0" | bc)" "$l"; done
  inlab "$gt" destroy "$out/t-floor-a.toml" --auto-approve >/dev/null
fi

if want wide; then
  step "plan against 1 and 20 nodes (one container and one link each), fastest of 5"
  inlab "$gt" apply "$out/read-20.toml" --auto-approve --parallelism 20 >/dev/null
  # cpu s: busy CPU of the whole machine during one plan (other jobs included);
  # geartopo cpu s: the geartopo process's own user + system time in that plan.
  printf '%6s %12s %10s %8s %16s\n' nodes "plan s" "vs 1 node" "cpu s" "geartopo cpu s"
  one=""
  for n in 1 20; do
    g=$(fastest 5 inlab "$gt" plan "$out/read-$n.toml" --detailed-exitcode --parallelism "$n")
    b=$(busy)
    inlab /usr/bin/time -f '%U %S' -o "$out/own" "$gt" plan "$out/read-$n.toml" --detailed-exitcode --parallelism "$n" >/dev/null
    c=$(echo "$(busy) - $b" | bc)
    own=$(awk '{print $1 + $2}' "$out/own")
    [ -n "$one" ] || one=$g
    printf '%6s %12.3f %9.2fx %8.2f %16.2f\n' "$n" "$g" "$(ratio "$g" "$one")" "$c" "$own"
  done
  # Where the CPU of one 20-node plan goes, by program (machine-wide samples:
  # geartopo, sshd, podman, conmon, iptables, ... and other jobs on the machine).
  if command -v perf >/dev/null; then
    perf record -q -a -F 499 -o "$out/perf.data" -- \
      "$gt" lab exec "$lab" -- "$gt" plan "$out/read-20.toml" --detailed-exitcode --parallelism 20 >/dev/null 2>&1
    echo "CPU samples of one 20-node plan, by program (perf record -a):"
    perf report -q -i "$out/perf.data" --sort comm --stdio 2>/dev/null | grep -v '^$' | head -25 || true
    echo "the geartopo process's own samples, by function:"
    perf report -q -i "$out/perf.data" --comm geartopo --sort dso,sym --stdio 2>/dev/null | grep -v '^$' | head -25 || true
  fi
  inlab "$gt" destroy "$out/read-20.toml" --auto-approve --parallelism 20 >/dev/null
fi

if want ansible; then
  step "a whole apply (4 nodes, 8 containers, 40 links): geartopo, Ansible, and the runtime's own share"
  venv=$repo/bench/.venv
  if [ ! -x "$venv/bin/ansible-playbook" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet ansible-core
  fi
  export ANSIBLE_HOME=$out/ansible-home ANSIBLE_PIPELINING=True ANSIBLE_HOST_KEY_CHECKING=True \
    ANSIBLE_INVENTORY=$out/inventory.ini ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_NOCOLOR=1 \
    ANSIBLE_RETRY_FILES_ENABLED=False ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
  inlab "$gt" plan "$out/apply.toml" --json >"$out/plan.json" || [ $? -eq 2 ]
  python3 bench/gen.py playbook "$out" "$out/plan.json"
  g_apply=$(secs inlab "$gt" apply "$out/apply.toml" --auto-approve)
  inlab "$gt" destroy "$out/apply.toml" --auto-approve >/dev/null
  a_apply=$(secs inlab "$venv/bin/ansible-playbook" -f 4 "$out/apply.yml")
  inlab "$venv/bin/ansible-playbook" "$out/remove.yml" >/dev/null
  # The runtime's own work in that apply, timed on the nodes: the same 8
  # `podman create` (same ports, sysctls, labels' count), `init` and `start`, the
  # 4 nodes at once as both tools run them; then removed.
  runtime_part() {
    local i pids=""
    for i in 1 2 3 4; do
      # shellcheck disable=SC2016 # expanded on the node
      onnode "node0$i" sh -c '
        i=$1; p=""; for k in 0 1 2 3 4; do p="$p -p $((50000 + 10 * i + k)):$((6379 + k))"; done
        for c in s a; do
          ports=""; [ $c = s ] && ports=$p
          podman create --name "rt-$c$i" --sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.conf.all.route_localnet=1 \
            --label geartopo.topology=rt --label geartopo.container=$c$i $ports localhost/geartopo-busybox:latest sleep 1000000 >/dev/null
          podman init "rt-$c$i" >/dev/null
          podman start "rt-$c$i" >/dev/null
        done' _ "$i" &
      pids="$pids $!"
    done
    # shellcheck disable=SC2086
    wait $pids
  }
  r_s=$(secs runtime_part)
  for i in 1 2 3 4; do onnode "node0$i" podman rm -f -t 0 "rt-s$i" "rt-a$i" >/dev/null; done
  printf '%-30s %10s %10s %12s\n' "" "total s" "runtime s" "runtime share"
  printf '%-30s %10.2f %10.2f %11.0f%%\n' "geartopo apply" "$g_apply" "$r_s" "$(echo "100 * $r_s / $g_apply" | bc -l)"
  printf '%-30s %10.2f %10.2f %11.0f%%\n' "Ansible playbook" "$a_apply" "$r_s" "$(echo "100 * $r_s / $a_apply" | bc -l)"
  echo "ansible / geartopo: $(ratio "$a_apply" "$g_apply")x; without the runtime's share: $(ratio "$(echo "$a_apply - $r_s" | bc)" "$(echo "$g_apply - $r_s" | bc)")x"
fi
