i=0
while :; do
  i=$((i + 1))
  if out=$(timeout 1.5 podman exec 0123456789abcdef redis-cli ping 2>&1); then exit 0; fi
  if [ "$i" -ge 10 ]; then
    echo 'todo-redisdb is not healthy after 10 tries (redis-cli failed): '"$(printf %s "$out" | tail -n 3)" >&2
    exit 1
  fi
  sleep 1
done
