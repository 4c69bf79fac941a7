set -e
docker rm -f 0123456789abcdef >/dev/null
