#!/usr/bin/env bash
# Bounded work on hostile input (issue 15): "any file under 64 KB validates (or is
# rejected) in under 2 s and 512 MB" with a release build. Builds geartopo
# --release, writes one file per hostile family (bench/hostile_gen.py, each under
# 64 KB), runs `geartopo validate` and `geartopo validate --json` on each under
# /usr/bin/time -v, and prints wall time and peak RSS per family and a verdict.
# Usage: bash bench/hostile.sh [RUNS]   (RUNS per family, default 3; the slowest
# run and the largest RSS are shown, and the CPU time (user + sys) of that run:
# on a loaded machine wall time is mostly waiting for a core). No root, no
# network. Exit 1 if a limit is passed (wall time or RSS).
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
cd "$repo"
runs=${1:-3}
find_cargo
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

step "building geartopo (release)"
cargo build --quiet --release --bin geartopo
gt=$target_dir/release/geartopo
out=$(mktemp -d /tmp/gt-hostile.XXXXXX)
trap 'rm -rf "$out"' EXIT
python3 bench/hostile_gen.py "$out"

step "geartopo validate on each family, worst of $runs runs (limits: 2 s, 512 MB)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) core(s)"
printf '%-22s %7s %-6s %-7s %7s %6s %7s  %s\n' family bytes output result 'wall s' 'cpu s' 'RSS MB' verdict
over=0
for f in "$out"/*.toml; do
  fam=$(basename "$f" .toml)
  for mode in text json; do
    args=(validate "$f")
    [ "$mode" = json ] && args+=(--json)
    worst_s=0 worst_cpu=0 worst_kb=0 rc=0
    for _ in $(seq "$runs"); do
      rc=0
      NO_COLOR=1 /usr/bin/time -v -o "$out/time" "$gt" "${args[@]}" >/dev/null 2>&1 || rc=$?
      s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); t=0; for(i=1;i<=n;i++) t=t*60+a[i]; print t}' "$out/time")
      kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time")
      cpu=$(awk -F': ' '/User time|System time/ {t += $2} END {print t}' "$out/time")
      if awk -v a="$worst_s" -v b="$s" 'BEGIN {exit !(b >= a)}'; then worst_s=$s worst_cpu=$cpu; fi
      [ "$kb" -gt "$worst_kb" ] && worst_kb=$kb
    done
    case $rc in 0) result=valid ;; 1) result=refused ;; *) result="exit $rc" ;; esac
    mb=$(awk -v k="$worst_kb" 'BEGIN {printf "%.1f", k / 1024}')
    verdict=ok
    if awk -v s="$worst_s" -v k="$worst_kb" 'BEGIN {exit !(s >= 2 || k >= 512 * 1024)}' ||
      [ "$rc" -gt 1 ]; then
      verdict=OVER
      over=1
    fi
    printf '%-22s %7s %-6s %-7s %7.2f %6.2f %7s  %s\n' "$fam" "$(stat -c %s "$f")" "$mode" "$result" "$worst_s" "$worst_cpu" "$mb" "$verdict"
  done
done
exit $over
