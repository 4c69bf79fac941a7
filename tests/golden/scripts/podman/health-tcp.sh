i=0
while :; do
  i=$((i + 1))
  pid=$(podman inspect -f '{{.State.Pid}}' 0123456789abcdef 2>/dev/null) || pid=0
  if out=$([ "$pid" -gt 0 ] 2>/dev/null || { echo 'not running'; false; } && if command -v bash >/dev/null 2>&1; then timeout 2 nsenter -t "$pid" -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379' 2>&1; else timeout 2 nsenter -t "$pid" -n nc -z 127.0.0.1 6379 2>&1; fi); then exit 0; fi
  if [ "$i" -ge 30 ]; then
    echo 'todo-redisdb is not healthy after 30 tries (no connection to 127.0.0.1:6379): '"$(printf %s "$out" | tail -n 3)" >&2
    exit 1
  fi
  sleep 0.5
done
