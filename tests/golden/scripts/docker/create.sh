set -e
docker create --name todo-app1 --label geartopo.topology=todo --label geartopo.container=app1 --label geartopo.spec=command=1,env=2,image=3 --sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.conf.all.route_localnet=1 --publish 50000:6379/tcp --publish 50001:53/udp --env 'X=$(touch /tmp/x); echo' localhost/geartopo-busybox:latest sleep 1000000 >/dev/null
