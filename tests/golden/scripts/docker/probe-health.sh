pid=$(docker inspect -f '{{.State.Pid}}' todo-redisdb 2>/dev/null) || pid=0
if { [ "$pid" -gt 0 ] 2>/dev/null || { echo 'not running'; false; } && if command -v bash >/dev/null 2>&1; then timeout 2 nsenter -t "$pid" -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379' 2>&1; else timeout 2 nsenter -t "$pid" -n nc -z 127.0.0.1 6379 2>&1; fi; } >/dev/null 2>&1; then echo health todo-redisdb healthy; else echo health todo-redisdb unhealthy; fi
if { timeout 1 docker exec todo-app1 /srv/check --quick 2>&1; } >/dev/null 2>&1; then echo health todo-app1 healthy; else echo health todo-app1 unhealthy; fi
