"""Test images built with tools that are not ours: umoci and busybox-static."""

from __future__ import annotations

from tests.testhost import TestHost

BUILD_BUSYBOX = r"""
layout=$1 tag=$2 cmd=$3
bundle=$(mktemp -d /srv/bundle.XXXXXX)
mkdir -p "$(dirname "$layout")"
[ -e "$layout/oci-layout" ] || umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$bundle"
root=$bundle/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root" "$root/home/app"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nnobody:x:65534:\n' > "$root/etc/group"
chown 1000:1000 "$root/home/app"
chmod 0700 "$root/home/app"
mkdir -p "$root/var/lib/app/data"
chown -R 1000:1000 "$root/var/lib/app"
chmod 0750 "$root/var/lib/app"
umoci repack --image "$layout:$tag" "$bundle"
umoci config --image "$layout:$tag" --config.cmd "$cmd" --config.env PATH=/bin
rm -rf "$bundle"
umoci gc --layout "$layout"
# umoci writes 0600 files; podman-sd-fetch reads layouts as its own
# unprivileged user, like any other image source.
chmod -R a+rX "$layout"
"""


def build_busybox_layout(
    host: TestHost, layout: str = "/srv/images/busybox", tag: str = "latest", cmd: str = "/bin/sh"
) -> str:
    """Build a one-layer busybox image in an OCI layout inside HOST; returns its reference."""
    host.run("/bin/sh", "-ec", BUILD_BUSYBOX, "build", layout, tag, cmd)
    return f"oci:{layout}:{tag}"


def accept_unsigned(host: TestHost, *scopes: str) -> None:
    """Trust SCOPES without signatures in HOST's policy.

    `make install` ships a policy that rejects every image not explicitly
    trusted; tests that are not about trust say which test images they
    accept, and nothing more."""
    for scope in scopes:
        host.run("podman-sd", "trust", "set", "--type", "accept", scope)


DERIVE = r"""
layout=$1 base=$2 tag=$3; shift 3
bundle=$(mktemp -d /srv/bundle.XXXXXX)
umoci unpack --image "$layout:$base" "$bundle"
for spec in "$@"; do
  path=${spec%%=*} content=${spec#*=}
  mkdir -p "$(dirname "$bundle/rootfs/$path")"
  printf '%s\n' "$content" > "$bundle/rootfs/$path"
done
umoci repack --image "$layout:$tag" "$bundle"
rm -rf "$bundle"
chmod -R a+rX "$layout"
"""


def derive_image(
    host: TestHost, files: dict[str, str], tag: str, base: str = "latest",
    layout: str = "/srv/images/busybox",
) -> str:  # fmt: skip
    """A new image TAG: BASE plus one layer holding FILES (path -> one line)."""
    host.run(
        "/bin/sh", "-ec", DERIVE, "derive", layout, base, tag,
        *(f"{path}={content}" for path, content in files.items()),
    )  # fmt: skip
    return f"oci:{layout}:{tag}"
