#!/usr/bin/env bash
# Builds the local test and demo image without any registry:
#   images/out/geartopo-busybox-rootfs.tar  a root filesystem (`podman import`)
#   images/out/geartopo-busybox.tar         the same as an image archive with
#                                           CMD and PATH set (`podman load`)
# Both load with `geartopo lab load FILE TARBALL localhost/geartopo-busybox:latest`.
#
# Contents: static busybox with its applets in /bin (sh, nc, sleep, wget, ip, ...),
# socat with the libraries ldd lists (busybox nc has no UDP), and two helpers:
#   gt-serve PROTO PORT REPLY       answer every TCP connection or UDP datagram on
#                                   PORT with one line "REPLY <line received>"
#   gt-ask PROTO HOST PORT [MSG]    send MSG (default "ping"), print the reply
# Needs busybox-static, socat and podman (scripts/install-deps.sh installs them).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${GEARTOPO_IMAGE_OUT:-$here/out}
name=localhost/geartopo-busybox:latest

for p in busybox socat ldd podman tar; do
  command -v "$p" >/dev/null || { echo "images/build.sh: $p is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
busybox=$(command -v busybox)
if ldd "$busybox" >/dev/null 2>&1; then
  echo "images/build.sh: $busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi

work=$(mktemp -d /tmp/geartopo-image.XXXXXX)
cleanup() {
  # podman may leave its store's mounts behind; unmount before removing.
  if [ -d "$work/store" ]; then
    { grep -F " $work/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
      while read -r m; do umount -l "$m" || true; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,run,var/tmp,usr/local/bin}
chmod 1777 "$root/tmp" "$root/var/tmp"

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done

# socat and exactly the libraries (and loader) ldd says it loads.
socat=$(readlink -f "$(command -v socat)")
mkdir -p "$root/usr/bin"
cp "$socat" "$root/usr/bin/socat"
ldd "$socat" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G

cat > "$root/usr/local/bin/gt-reply" <<'S'
#!/bin/sh
# One exchange: read a line, answer "$GT_REPLY <line>".
IFS= read -r line
echo "$GT_REPLY $line"
S
cat > "$root/usr/local/bin/gt-serve" <<'S'
#!/bin/sh
# gt-serve PROTO PORT REPLY: answer every TCP connection or UDP datagram on PORT
# with "REPLY <line received>", so a client can tell who answered.
set -eu
if [ $# -ne 3 ]; then echo "usage: gt-serve tcp|udp PORT REPLY" >&2; exit 2; fi
export GT_REPLY="$3"
case "$1" in
  tcp) exec socat "TCP4-LISTEN:$2,fork,reuseaddr" EXEC:/usr/local/bin/gt-reply ;;
  udp) exec socat "UDP4-RECVFROM:$2,fork,reuseaddr" EXEC:/usr/local/bin/gt-reply ;;
  *) echo "gt-serve: protocol must be tcp or udp" >&2; exit 2 ;;
esac
S
cat > "$root/usr/local/bin/gt-ask" <<'S'
#!/bin/sh
# gt-ask PROTO HOST PORT [MESSAGE]: send MESSAGE (default "ping"), print the reply.
set -eu
if [ $# -lt 3 ]; then echo "usage: gt-ask tcp|udp HOST PORT [MESSAGE]" >&2; exit 2; fi
msg=${4:-ping}
case "$1" in
  tcp) echo "$msg" | exec socat -T 5 -t 5 - "TCP4:$2:$3,connect-timeout=5" ;;
  # UDP has no end of stream: wait up to 3s for the answer.
  udp) echo "$msg" | exec socat -T 3 -t 3 - "UDP4:$2:$3" ;;
  *) echo "gt-ask: protocol must be tcp or udp" >&2; exit 2 ;;
esac
S
chmod 755 "$root"/usr/local/bin/*

# Prove it runs before shipping it: socat finds its libraries inside the rootfs.
chroot "$root" /usr/bin/socat -V >/dev/null
chroot "$root" /bin/sh -c 'echo ok' >/dev/null

mkdir -p "$out"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out/geartopo-busybox-rootfs.tar" .

# The image archive: imported into a throwaway podman store (no network, no
# registry), with a default command and PATH, then saved. Its stop signal is
# SIGKILL: busybox applets and socat run as pid 1 and pid 1 ignores SIGTERM
# without a handler, so a graceful stop would always wait out podman's 10s
# before killing; these test processes hold no state worth a clean exit.
mkdir -p "$work/store"/{storage,run,tmp}
cat > "$work/store/containers.conf" <<C
[engine]
events_logger = "file"
tmp_dir = "$work/store/tmp"
static_dir = "$work/store/storage/libpod"
C
# overlay cannot stack on overlayfs (this machine itself a container): vfs then.
driver=overlay
[ "$(stat -f -c %T "$work")" = overlayfs ] && driver=vfs
cat > "$work/store/storage.conf" <<C
[storage]
driver = "$driver"
graphroot = "$work/store/storage"
runroot = "$work/store/run"
C
export CONTAINERS_CONF=$work/store/containers.conf CONTAINERS_STORAGE_CONF=$work/store/storage.conf
podman import --quiet \
  --change 'CMD ["/bin/sh"]' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'STOPSIGNAL SIGKILL' \
  "$out/geartopo-busybox-rootfs.tar" "$name" >/dev/null
rm -f "$out/geartopo-busybox.tar"
podman save --quiet --format docker-archive -o "$out/geartopo-busybox.tar" "$name"
podman rmi --all --force >/dev/null 2>&1 || true

ls -l "$out"/geartopo-busybox*.tar | awk '{print "images/build.sh: wrote " $NF " (" $5 " bytes)"}'
