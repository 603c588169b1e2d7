#!/bin/sh
# Builds a tiny image from Debian's busybox-static and imports it into Podman's storage, so tests
# have an image without internet access. Idempotent: does nothing if the image already exists.
#
# Usage: make_busybox_image.sh [IMAGE]   (default localhost/berth-busybox:latest)
# Honours CONTAINERS_CONF (e.g. one that selects runc) like any podman invocation.
set -eu
image=${1:-localhost/berth-busybox:latest}

if podman image exists "$image" 2>/dev/null; then
  exit 0
fi

bb=/bin/busybox
[ -x "$bb" ] || bb=/usr/bin/busybox
if ! "$bb" --list >/dev/null 2>&1; then
  echo "make_busybox_image.sh: busybox-static is not installed (apt-get install -y busybox-static)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/www"
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
# One symlink per applet. Skipping "busybox" itself matters: linking it would replace the binary
# with a symlink to itself and break every applet.
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] && continue
  ln -sf busybox "$root/bin/$applet"
done
# Users for tests that run as a non-root user by name.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

tar -C "$root" -cf "$work/img.tar" .
# Concurrent test runs may race to import; the loser's import is harmless (same name, retagged).
podman import -q --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$work/img.tar" "$image" >/dev/null
podman image exists "$image"
