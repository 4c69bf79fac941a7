#!/usr/bin/env bash
# The benchmarks of issue 8, geartopo next to its alternative, in one run:
#   plan   planning alone, in memory (cargo bench --bench plan)
#   rules  one container's rules: one restore vs a process per rule (cargo bench --bench rules)
#   nft    the nftables backend against iptables: 10 to 10,000 links into one
#          namespace by `nft -f` vs `iptables-restore --noflush`, and read back
#          (cargo bench --bench nft; a scratch namespace per trial, removed after)
#   lab    on a lab of 20 real hosts (198.18.0.1-20): reading state (plan) against
#          1, 5 and 20 nodes vs an Ansible read; a whole apply (4 nodes, 8
#          containers, 40 links) and its no-op re-apply vs an equivalent Ansible
#          playbook (ansible-core from PyPI in bench/.venv, iptables and command
#          modules over SSH, pipelining on, host keys checked)
# Usage, as root: bash bench/run.sh [plan] [rules] [nft] [lab]   (default: all four)
# Needs root. Everything networked lives in namespaces: the lab's, and for `rules`
# a fresh one per trial. Idempotent; takes down what it made, also on failure.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
require_root "$@"
cd "$repo"
parts=${*:-plan rules nft lab}
find_cargo

want() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if want plan; then
  step "item 4: planning alone, in memory"
  cargo bench --quiet --bench plan
fi
if want rules; then
  step "item 2: pushing one container's rules"
  cargo bench --quiet --bench rules
fi
if want nft; then
  step "issue 17: nft -f against iptables-restore, 10 to 10,000 links"
  cargo bench --quiet --bench nft
fi
want lab || exit 0

step "building geartopo (release), the test image, and Ansible (bench/.venv)"
(cargo build --quiet --release --bin geartopo)
gt=$target_dir/release/geartopo
[ -f images/out/geartopo-busybox.tar ] || bash images/build.sh
venv=$repo/bench/.venv
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet ansible-core
fi
"$venv/bin/ansible-playbook" --version | head -1

out=$(mktemp -d /tmp/gtB-bench.XXXXXX)
python3 bench/gen.py inputs "$out"
lab=$out/lab.toml
export ANSIBLE_HOME=$out/ansible-home ANSIBLE_PIPELINING=True ANSIBLE_HOST_KEY_CHECKING=True \
  ANSIBLE_INVENTORY=$out/inventory.ini ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_NOCOLOR=1 \
  ANSIBLE_RETRY_FILES_ENABLED=False ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
inlab() { "$gt" lab exec "$lab" -- "$@"; }
ansible_playbook() { inlab "$venv/bin/ansible-playbook" "$@"; }

cleanup() {
  local rc=$?
  step "cleaning up"
  inlab "$gt" destroy "$out/read-20.toml" --auto-approve >/dev/null 2>&1 || true
  inlab "$gt" destroy "$out/apply.toml" --auto-approve >/dev/null 2>&1 || true
  [ -f "$out/remove.yml" ] && ansible_playbook "$out/remove.yml" >/dev/null 2>&1 || true
  # Ansible's SSH control masters (ControlPersist), by their sockets.
  for s in "$ANSIBLE_HOME"/cp/*; do
    [ -S "$s" ] && inlab ssh -O exit -S "$s" x >/dev/null 2>&1 || true
  done
  "$gt" lab down "$lab" || true
  rm -rf "$out"
  exit $rc
}

# Seconds that "$@" took (output to $out/last.log, shown when it fails).
secs() {
  local s e
  s=$(date +%s.%N)
  if ! "$@" >"$out/last.log" 2>&1; then
    echo "bench: failed: $*" >&2
    tail -30 "$out/last.log" >&2
    return 1
  fi
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
# The fastest of N runs.
fastest() {
  local n=$1 best="" t
  shift
  for _ in $(seq "$n"); do
    t=$(secs "$@")
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
ratio() { echo "scale=1; $1 / $2" | bc; }
# Busy CPU seconds of the whole machine so far (all cores; /proc/stat, in USER_HZ).
busy() { awk '/^cpu /{print ($2+$3+$4+$7+$8) / 100}' /proc/stat; }
# Busy CPU seconds of the machine during one run of "$@" (the nodes' side included).
cpu_of() {
  local b
  b=$(busy)
  "$@" >"$out/last.log" 2>&1
  echo "$(busy) - $b" | bc
}

step "a lab of 20 nodes (198.18.0.1-20)"
"$gt" lab down "$lab" >/dev/null 2>&1 || true
trap cleanup EXIT
"$gt" lab up "$lab" >/dev/null
"$gt" lab load "$lab" images/out/geartopo-busybox.tar localhost/geartopo-busybox:latest >/dev/null

step "item 1: reading state (plan), one container with a link on each node"
inlab "$gt" apply "$out/read-20.toml" --auto-approve >/dev/null
echo "(cpu s: busy CPU seconds of the whole machine, $(nproc) cores, during one plan: nodes' side included)"
printf '%6s %12s %10s %8s %12s %12s\n' nodes "geartopo s" "vs 1 node" "cpu s" "ansible s" "ansible/gt"
one=""
for n in 1 5 20; do
  # All nodes at once (the default is 10 at a time).
  g=$(fastest 5 inlab "$gt" plan "$out/read-$n.toml" --detailed-exitcode --parallelism "$n")
  c=$(cpu_of inlab "$gt" plan "$out/read-$n.toml" --detailed-exitcode --parallelism "$n")
  [ -n "$one" ] || one=$g
  hosts=$(seq -f 'node%02g' 1 "$n" | paste -sd,)
  a=$(fastest 3 ansible_playbook -f "$n" -l "$hosts" "$out/read.yml")
  printf '%6s %12.3f %9.2fx %8.2f %12.3f %11.1fx\n' "$n" "$g" "$(ratio "$g" "$one")" "$c" "$a" "$(ratio "$a" "$g")"
done
inlab "$gt" destroy "$out/read-20.toml" --auto-approve >/dev/null

step "item 3: a whole apply, 4 nodes, 8 containers, 40 links"
inlab "$gt" plan "$out/apply.toml" --json >"$out/plan.json" || [ $? -eq 2 ]
python3 bench/gen.py playbook "$out" "$out/plan.json"
g_apply=$(secs inlab "$gt" apply "$out/apply.toml" --auto-approve)
g_noop=$(fastest 3 inlab "$gt" apply "$out/apply.toml" --auto-approve)
grep -q "No changes" "$out/last.log" || { echo "bench: geartopo re-apply was not a no-op" >&2; exit 1; }
count_rules() {
  for node in node01 node02 node03 node04; do
    "$gt" lab exec "$lab" --node "$node" -- sh -c \
      'for c in $(podman ps -q); do nsenter -t "$(podman inspect -f "{{.State.Pid}}" "$c")" -n iptables-save -t nat; done' |
      grep -c '^-A ' || true
  done | paste -sd+ | bc
}
g_rules=$(count_rules)
inlab "$gt" destroy "$out/apply.toml" --auto-approve >/dev/null
a_apply=$(secs ansible_playbook -f 4 "$out/apply.yml")
a_noop=$(fastest 3 ansible_playbook -f 4 "$out/apply.yml")
grep -q "changed=0" "$out/last.log" || { echo "bench: Ansible re-run changed something" >&2; tail -20 "$out/last.log" >&2; exit 1; }
a_rules=$(count_rules)
ansible_playbook "$out/remove.yml" >/dev/null
echo "rules in the containers' nat tables (jumps included): geartopo $g_rules, Ansible $a_rules"
printf '%-22s %12s %12s %12s\n' "" "geartopo s" "ansible s" "ansible/gt"
printf '%-22s %12.2f %12.2f %11.1fx\n' "apply (empty nodes)" "$g_apply" "$a_apply" "$(ratio "$a_apply" "$g_apply")"
printf '%-22s %12.2f %12.2f %11.1fx\n' "re-apply (no-op)" "$g_noop" "$a_noop" "$(ratio "$a_noop" "$g_noop")"
