d="${GEARTOPO_RUN_DIR:-/run/geartopo}"
if [ ! -d "$d/apply.lock" ]; then echo "no lock is held (any more)" >&2; exit 0; fi
if [ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = 'geartopo apply of todo by root@host1 pid 42 since unix time 0' ]; then
  rm -rf "$d/apply.lock"
else
  echo "the lock changed since it was shown; nothing was removed" >&2; exit 1
fi
