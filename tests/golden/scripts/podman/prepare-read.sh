set -u
sd="${GEARTOPO_STATE_DIR:-/var/lib/geartopo}"; cf="${GEARTOPO_DOCKER_CONFIG:-/etc/docker/daemon.json}"
for p in "$sd" "$cf"; do
  case "$p" in /*) ;; *) echo "geartopo: GEARTOPO_STATE_DIR and GEARTOPO_DOCKER_CONFIG must be absolute paths (got $p)" >&2; exit 1 ;; esac
  case "$p" in *[!A-Za-z0-9_./-]*) echo "geartopo: GEARTOPO_STATE_DIR and GEARTOPO_DOCKER_CONFIG must be paths of A-Z a-z 0-9 _ . - / (got $p)" >&2; exit 1 ;; esac
done
r=$(docker info --format '{{with index .Runtimes "geartopo"}}{{.Path}}{{end}}') || { echo "geartopo: dockerd does not answer (docker info failed): is this a docker node, is dockerd running?" >&2; exit 1; }
echo "geartopo-prepare $sd $cf"
echo "registered $r"
if [ -f "$cf" ]; then echo "config $(sha256sum < "$cf" | cut -d' ' -f1)"; cat "$cf"; else echo "config absent"; fi
