d="${GEARTOPO_RUN_DIR:-/run/geartopo}"; mkdir -p "$d" || exit 1
if mkdir "$d/apply.lock" 2>/dev/null; then
  printf '%s\n' 'geartopo apply of todo by root@host1 pid 42 since unix time 0' > "$d/apply.lock/holder"
  printf '%s\n' topology=todo user=root host=host1 pid=42 start_ticks=4242 boot_id=0a1b2c3d-0000-4000-8000-000000000000 since=0 > "$d/apply.lock/info"
else
  echo "locked by: $(cat "$d/apply.lock/holder" 2>/dev/null) (lock $d/apply.lock)" >&2
  sed 's/^/lock-info: /' "$d/apply.lock/info" >&2 2>/dev/null || true
  exit 75
fi
