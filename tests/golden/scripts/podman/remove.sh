set -e
f=$(podman inspect -f '{{index .Config.Labels "geartopo.rules"}}' 0123456789abcdef 2>/dev/null) || f=
podman rm -f 0123456789abcdef >/dev/null
case $f in
  '' | .* | *[!A-Za-z0-9_.-]*) ;;
  *)
    sd="${GEARTOPO_STATE_DIR:-/var/lib/geartopo}"; hd="${GEARTOPO_HOOKS_DIR:-/etc/containers/oci/hooks.d}"
    rm -f "$sd/rules/$f"
    if [ -z "$(ls -A "$sd/rules" 2>/dev/null)" ]; then rm -f "$hd/geartopo.json" "$sd/hook" "$sd/runtime"; fi
    ;;
esac
