set -e
podman rm -f 0123456789abcdef >/dev/null
