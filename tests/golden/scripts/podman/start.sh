set -e
[ "$(podman inspect -f '{{.State.Running}}' 0123456789abcdef)" = true ] || podman start 0123456789abcdef >/dev/null
