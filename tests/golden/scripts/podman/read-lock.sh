d="${GEARTOPO_RUN_DIR:-/run/geartopo}"
if [ -d "$d/apply.lock" ]; then
  echo "locked by: $(cat "$d/apply.lock/holder" 2>/dev/null) (lock $d/apply.lock)"
  sed 's/^/lock-info: /' "$d/apply.lock/info" 2>/dev/null || true
for f in "${GEARTOPO_RUN_DIR:-/run/geartopo}/scripts"/*.pid; do
  if [ ! -f "$f" ] || [ "$f" = "${GEARTOPO_PID_FILE:-}" ]; then continue; fi
  p=$(cat "$f" 2>/dev/null) || continue
  case "$p" in ''|*[!0-9]*) continue ;; esac
  if kill -0 "-$p" 2>/dev/null; then
    echo "script: $f $p"
    ps -o pid=,etime=,args= -s "$p" 2>/dev/null | sed 's/^ */script-ps: /'
  fi
done
fi
