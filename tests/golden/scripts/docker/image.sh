if ! docker image inspect localhost/geartopo-busybox:latest >/dev/null 2>&1; then
  docker pull -q localhost/geartopo-busybox:latest >/dev/null || { echo image localhost/geartopo-busybox:latest "is not on this node and could not be pulled" >&2; exit 1; }
fi
