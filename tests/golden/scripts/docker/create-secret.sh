set -e
umask 077
envfile=$(mktemp)
trap 'rm -f "$envfile"' EXIT
trap 'rm -f "$envfile"; exit 129' HUP
trap 'rm -f "$envfile"; exit 130' INT
trap 'rm -f "$envfile"; exit 143' TERM
printf '%s\n' 'API_KEY=it'\''s secret' >> "$envfile"
TLS_KEY='-----BEGIN secret-----
AAAA
-----END-----' docker create --name todo-app1 --label geartopo.topology=todo --label geartopo.container=app1 --label geartopo.spec=command=1,env=2,image=3 --sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.conf.all.route_localnet=1 --publish 50000:6379/tcp --publish 50001:53/udp --env 'X=$(touch /tmp/x); echo' --env TLS_KEY --env-file "$envfile" localhost/geartopo-busybox:latest sleep 1000000 >/dev/null
