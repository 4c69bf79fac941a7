set -e
[ "$(docker inspect -f '{{.State.Running}}' 0123456789abcdef)" = true ] || docker start 0123456789abcdef >/dev/null
rc=$?
if [ "$rc" -eq 0 ]; then
d="${GEARTOPO_RUN_DIR:-/run/geartopo}"
if [ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = 'geartopo apply of todo by root@host1 pid 42 since unix time 0' ]; then rm -rf "$d/apply.lock"; fi
[ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = 'geartopo apply of todo by root@host1 pid 42 since unix time 0' ] || echo "@@geartopo released"
fi
exit "$rc"
