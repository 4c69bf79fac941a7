d="${GEARTOPO_RUN_DIR:-/run/geartopo}"
if [ ! -d "$d/apply.lock" ]; then echo "no lock is held (any more)" >&2; exit 0; fi
if [ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = 'geartopo apply of todo by root@host1 pid 42 since unix time 0' ]; then
for f in "${GEARTOPO_RUN_DIR:-/run/geartopo}/scripts"/*.pid; do
  if [ ! -f "$f" ] || [ "$f" = "${GEARTOPO_PID_FILE:-}" ]; then continue; fi
  p=$(cat "$f" 2>/dev/null) || continue
  case "$p" in ''|*[!0-9]*) echo "$f: not a process id: $p" >&2; exit 1 ;; esac
  kill -TERM "-$p" 2>/dev/null || true
  i=0
  while kill -0 "-$p" 2>/dev/null; do
    i=$((i+1))
    if [ "$i" -eq 5 ]; then kill -KILL "-$p" 2>/dev/null || true; fi
    if [ "$i" -gt 10 ]; then echo "process group $p ($f) is still running" >&2; exit 1; fi
    sleep 1
  done
  rm -f "$f"
  echo "ended process group $p ($f)"
done
  rm -rf "$d/apply.lock"
else
  echo "the lock changed since it was shown; nothing was removed" >&2; exit 1
fi
