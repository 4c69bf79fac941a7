#!/bin/sh
# Build localhost/geartopo-etcd:latest from what Debian packages, no registry:
# etcd and etcdctl (etcd-server, etcd-client), busybox (busybox-static) for the
# entrypoint's shell, and the libraries `ldd` lists for them.
#
#   images/etcd/build.sh [--out DIR] [--load]
#
# Writes, in DIR (default: $GEARTOPO_IMAGE_OUT, else images/out, like images/build.sh):
#   geartopo-etcd.rootfs.tar  the bare root filesystem
#   geartopo-etcd.tar         an image archive (docker-archive) with the entrypoint as
#                             CMD and ETCDCTL_API/PATH set; `podman load -i` it, or
#                             `geartopo lab load FILE geartopo-etcd.tar localhost/geartopo-etcd:latest`
# --load also loads the archive into the store of $PODMAN (default "podman";
# e.g. PODMAN="podman --root /x --runroot /y").
#
# The archive is made in a throwaway podman store (vfs, in a temp dir removed
# on exit), so building never touches the machine's own store.
set -eu

NAME=localhost/geartopo-etcd:latest
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${GEARTOPO_IMAGE_OUT:-$repo/images/out}
load=no
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --load) load=yes; shift ;;
        -h|--help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

missing=""
for tool in etcd etcdctl busybox podman ldd; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "build.sh: missing:$missing (apt-get install etcd-server etcd-client busybox-static podman)" >&2
    exit 1
fi

work=$(mktemp -d /tmp/geartopo-etcd-build.XXXXXX)
store_used=no
cleanup() {
    if [ "$store_used" = yes ]; then
        # vfs layers are plain directories, but podman may hold mounts; unmount first.
        podman --root "$work/store" --runroot "$work/run" --storage-driver vfs \
            rmi -a -f >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

root=$work/rootfs
mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/local/bin" "$root/etc" \
    "$root/tmp" "$root/var/lib/etcd" "$root/root"
chmod 1777 "$root/tmp"
chmod 700 "$root/var/lib/etcd"

# copy a binary and every library ldd lists for it, at the same paths
copy_with_libs() {
    install -D -m 0755 "$1" "$root$2"
    ldd "$1" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p' |
        while read -r lib; do
            [ -e "$root$lib" ] || install -D -m 0755 "$lib" "$root$lib"
        done
}

copy_with_libs "$(command -v etcd)" /usr/bin/etcd
copy_with_libs "$(command -v etcdctl)" /usr/bin/etcdctl
copy_with_libs "$(command -v busybox)" /bin/busybox
for applet in $(busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/entrypoint.sh" "$root/usr/local/bin/geartopo-etcd"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
: >"$root/etc/hosts"
: >"$root/etc/resolv.conf"

mkdir -p "$out"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$out/geartopo-etcd.rootfs.tar" .

store_used=yes
p() { podman --root "$work/store" --runroot "$work/run" --storage-driver vfs "$@"; }
p import --quiet \
    --change 'CMD ["/usr/local/bin/geartopo-etcd"]' \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV ETCDCTL_API=3' \
    --change 'EXPOSE 2379' --change 'EXPOSE 2380' \
    --change 'WORKDIR /var/lib/etcd' \
    "$out/geartopo-etcd.rootfs.tar" "$NAME" >/dev/null
rm -f "$out/geartopo-etcd.tar"
p save --quiet --format docker-archive -o "$out/geartopo-etcd.tar" "$NAME" >/dev/null
echo "built $NAME: $out/geartopo-etcd.tar (rootfs: $out/geartopo-etcd.rootfs.tar)"

if [ "$load" = yes ]; then
    ${PODMAN:-podman} load -i "$out/geartopo-etcd.tar"
fi
