d="${GEARTOPO_RUN_DIR:-/run/geartopo}"
if [ -d "$d/apply.lock" ]; then
  echo "locked by: $(cat "$d/apply.lock/holder" 2>/dev/null) (lock $d/apply.lock)"
  sed 's/^/lock-info: /' "$d/apply.lock/info" 2>/dev/null || true
fi
