d="${GEARTOPO_RUN_DIR:-/run/geartopo}"; mkdir -p "$d" || exit 1
if mkdir "$d/apply.lock" 2>/dev/null; then
  printf '%s\n' 'geartopo apply of todo by root@host1 pid 42 since unix time 0' > "$d/apply.lock/holder"
else
  echo "locked by: $(cat "$d/apply.lock/holder" 2>/dev/null || echo unknown) (lock $d/apply.lock)" >&2
  exit 75
fi
