set -e
[ "$(docker inspect -f '{{.State.Running}}' 0123456789abcdef)" = true ] || docker start 0123456789abcdef >/dev/null
