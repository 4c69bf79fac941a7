set -u
t=todo
# The pid of container $1 when it is this topology's and runs, else empty.
pid_of() {
  info=$(docker inspect -f '{{.State.Pid}} {{index .Config.Labels "geartopo.topology"}}' "$1" 2>/dev/null) || info=
  case $info in
    *" $t") p=${info%% *}; [ "$p" -gt 0 ] 2>/dev/null && echo "$p" ;;
  esac
}
# One TCP connect from the namespace of pid $1 to $2:$3; prints the result.
probe() {
  if [ -z "$1" ]; then echo not-running; return; fi
  if command -v bash >/dev/null 2>&1; then
    # shellcheck disable=SC2016 # expanded by the bash inside the namespace
    out=$(timeout 3 nsenter -t "$1" -n bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>&1)
    rc=$?
  elif command -v nc >/dev/null 2>&1; then
    out=$(timeout 3 nsenter -t "$1" -n nc -z -w 3 "$2" "$3" 2>&1)
    rc=$?
  else
    echo no-probe; return
  fi
  if [ "$rc" = 0 ]; then echo ok
  elif [ "$rc" = 124 ]; then echo timeout
  else
    case $out in
      *refused*) echo refused ;;
      *"No route"* | *nreachable*) echo unreachable ;;
      *) echo "error $(printf '%s' "$out" | tr -c 'A-Za-z0-9.:_-' ' ' | cut -c1-160)" ;;
    esac
  fi
}
(
  pid=$(pid_of todo-app1)
  r=$(probe "$pid" 127.0.0.1 6379); echo "@@geartopo-check 0 $r"
  r=$(probe "$pid" 192.168.1.2 2379); echo "@@geartopo-check 1 $r"
) &
(
  pid=$(pid_of todo-web)
  r=$(probe "$pid" 127.0.0.1 80); echo "@@geartopo-check 2 $r"
) &
wait
