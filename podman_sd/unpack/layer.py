"""Unpack one OCI layer into a directory that overlayfs can use as a lower layer.

One pass over the blob: hash it, decompress it, hash the tar stream, and
extract each entry as it streams by (tarfile mode ``r|``). The work happens in
a temporary sibling of the destination that is renamed into place only when
every entry is written and both digests match; on any error it is removed, so
the destination either holds the whole verified layer or does not exist.

Nothing is ever written outside the temporary directory: paths are split and
checked (no absolute paths, no ``..``), every directory is entered by
descriptor without following symbolic links (``tree.DirTree``), and hard
links may only name entries written earlier by this same layer.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tarfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, BinaryIO, Final, Self, cast

from podman_sd.errors import LayerDigestError, LayerLimitError, UnpackError
from podman_sd.syscalls import syncfs
from podman_sd.unpack import whiteout
from podman_sd.unpack.fault import LayerFault, LimitFault, NotADirectoryFault
from podman_sd.unpack.limits import DEFAULT_LIMITS, UnpackLimits
from podman_sd.unpack.lower import LowerView, Meta
from podman_sd.unpack.streams import (
    CHUNK,
    MEDIA_TYPES,
    TarStream,
    digest_algorithm,
    open_tar_stream,
)
from podman_sd.unpack.tree import (
    O_DIR,
    DirTree,
    Parts,
    lstat_at,
    proc_path,
    remove_at,
    remove_path,
    show,
    split_path,
)

# Headers whose payload tarfile reads into memory before the next member.
_META_TYPES: Final = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)
_MAX_ID: Final = 2**32 - 2  # (uid_t)-1 means "leave unchanged" to chown(2)
_XATTR_PAX_PREFIX: Final = "SCHILY.xattr."
_PAX_TIME: Final = re.compile(r"(-?)([0-9]{1,19})(?:\.([0-9]{0,30}))?")
_NEW_FILE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def unpack_layer(
    src: BinaryIO,
    media_type: str,
    dest: Path,
    *,
    expected_digest: str | None,
    expected_diff_id: str | None,
    limits: UnpackLimits = DEFAULT_LIMITS,
    lower_dirs: Sequence[Path] = (),
    durable: bool = True,
    report: dict[str, int] | None = None,
) -> str:
    """Unpack the layer blob read from ``src`` into ``dest``; return its diff ID.

    ``expected_digest`` is the digest of the blob as read (compressed),
    ``expected_diff_id`` that of the uncompressed tar; either may be None to
    skip that check, and both are checked before ``dest`` appears. ``dest``
    must not exist (the store keys layer directories by diff ID and checks
    first; concurrent unpacks of one layer must be serialised by the caller).

    ``lower_dirs`` are the directories of the layers below, bottom first, as
    unpacked by this function. Directories the archive only implies (it lists
    ``etc/passwd`` but not ``etc/``) then take the metadata the lower layers
    show there, as they would when extracted onto the merged tree; without
    them they are root-owned 0755. The result then depends on the parents: a
    store sharing layer directories between images should key them by chain
    ID when it passes ``lower_dirs``.

    ``report``, if given, receives ``implied_directories``: how many
    directories below the root the archive only implied. When that is 0 the
    layer's tree does not depend on ``lower_dirs`` at all (the usual case for
    images built by docker or buildah, which list every parent).

    With ``durable`` the data is flushed to disk (syncfs(2)) before the rename,
    so a crash never leaves a complete-looking but empty layer.

    Raises UnpackError (LayerDigestError, LayerLimitError) naming the layer
    and, where there is one, the offending entry.
    """
    label = expected_digest or expected_diff_id or "(unverified)"
    compression = MEDIA_TYPES.get(media_type)
    if compression is None:
        raise UnpackError(f"layer {label}: unsupported media type {media_type!r}")
    blob_algorithm = digest_algorithm(expected_digest, "layer digest")
    diff_algorithm = digest_algorithm(expected_diff_id, "diff ID")
    if os.path.lexists(dest):
        raise UnpackError(f"layer {label}: {dest} already exists")

    tmp = dest.parent / f".tmp-{dest.name}-{secrets.token_hex(8)}"
    try:
        # 0700 until the end: nobody else walks a half-written layer.
        os.mkdir(tmp, 0o700)
    except OSError as e:
        raise UnpackError(f"layer {label}: cannot create {tmp}: {e.strerror}") from e
    try:
        with ExitStack() as stack:
            root_fd = os.open(tmp, O_DIR)
            stack.callback(os.close, root_fd)
            compressed, stream = open_tar_stream(
                src,
                compression,
                digest_algorithm=blob_algorithm,
                diff_id_algorithm=diff_algorithm,
                limits=limits,
            )
            tree = DirTree(root_fd)
            stack.callback(tree.close)
            lower = stack.enter_context(LowerView(lower_dirs))
            extractor = _Extractor(tree, limits, lower)
            if report is not None:
                report["implied_directories"] = 0
                extractor.report = report
            try:
                _extract_stream(stream, extractor, limits)
                stream.drain()
                compressed.drain()
            except BaseException as e:
                _raise_named(e, label, extractor)
                raise
            _check_digest(label, "digest", expected_digest, compressed.digest())
            diff_id = stream.digest()
            _check_digest(label, "diff ID", expected_diff_id, diff_id)
            try:
                extractor.finish()
            except BaseException as e:
                _raise_named(e, label, extractor)
                raise
        if durable:
            # Only the store's file system, not every one on the host.
            tmp_fd = os.open(tmp, O_DIR)
            try:
                syncfs(tmp_fd)
            finally:
                os.close(tmp_fd)
        os.rename(tmp, dest)
    except BaseException as e:
        remove_path(tmp)
        if isinstance(e, OSError):  # lower_dirs, sync, rename: not about an entry
            raise UnpackError(f"layer {label}: {e.strerror or e}: {e.filename}") from e
        raise
    if durable:
        parent_fd = os.open(dest.parent, O_DIR)
        try:
            os.fsync(parent_fd)
        finally:
            os.close(parent_fd)
    return diff_id


def _check_digest(label: str, what: str, expected: str | None, actual: str) -> None:
    if expected is not None and expected != actual:
        raise LayerDigestError(f"layer {label}: {what} mismatch: expected {expected}, got {actual}")


def _raise_named(e: BaseException, label: str, extractor: _Extractor) -> None:
    """Turn an internal failure into the public error naming layer and entry."""
    if extractor.current is not None:
        where = f"layer {label}: entry {extractor.current!r}: "
    elif extractor.previous is not None:
        where = f"layer {label}: after entry {extractor.previous!r}: "
    else:
        where = f"layer {label}: "
    if isinstance(e, LimitFault):
        raise LayerLimitError(where + str(e)) from e
    if isinstance(e, LayerFault):
        raise UnpackError(where + str(e)) from e
    if isinstance(e, tarfile.TarError):
        raise UnpackError(f"{where}corrupt or truncated archive: {e}") from e
    if isinstance(e, RecursionError):
        raise UnpackError(f"{where}corrupt archive: too many nested headers") from e
    if isinstance(e, OSError):
        raise UnpackError(where + (e.strerror or str(e))) from e
    if isinstance(e, (ValueError, OverflowError)):
        raise UnpackError(f"{where}invalid value: {e}") from e


_HeaderError = tarfile.HeaderError  # the parameter below shadows the module
# Not in tarfile's __all__ (so not in typeshed), but stable since Python 3.2.
_EOFHeaderError: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_InvalidHeaderError: type[Exception] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]


class _LayerTarFile(tarfile.TarFile):
    members: list[tarfile.TarInfo]
    # Why the last header could not be read; tarfile's next() swallows it.
    header_error: tarfile.HeaderError | None = None


def _tarinfo_class(max_header_bytes: int) -> type[tarfile.TarInfo]:
    class _TarInfo(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
            info = super().frombuf(buf, encoding, errors)
            if info.type in _META_TYPES and info.size > max_header_bytes:
                raise LimitFault(f"tar header larger than {max_header_bytes} bytes")
            if info.type == tarfile.GNUTYPE_SPARSE:
                raise LayerFault("sparse files are not supported")
            return info

        @classmethod
        def fromtarfile(cls, tarfile: tarfile.TarFile) -> Self:
            try:
                return super().fromtarfile(tarfile)
            except _HeaderError as e:
                if isinstance(tarfile, _LayerTarFile):
                    tarfile.header_error = e
                raise

    return _TarInfo


def _extract_stream(stream: TarStream, extractor: _Extractor, limits: UnpackLimits) -> None:
    # tarfile reads ahead in CHUNK-sized pieces: allow for two of them.
    budget = limits.max_header_bytes + 2 * CHUNK
    stream.header_budget = budget
    tar = _LayerTarFile.open(
        fileobj=cast(IO[bytes], stream),
        mode="r|",
        bufsize=CHUNK,
        tarinfo=_tarinfo_class(limits.max_header_bytes),
        encoding="utf-8",
        errors="surrogateescape",
    )
    with tar:
        while True:
            stream.header_budget = budget
            member = tar.next()
            stream.header_budget = None
            # A stream-mode TarFile keeps every member it has read: let go.
            tar.members.clear()
            if member is None:
                break
            extractor.extract(tar, member)
        end = tar.header_error
        if not isinstance(end, _EOFHeaderError):
            if isinstance(end, _InvalidHeaderError):
                raise LayerFault(f"corrupt archive: {end}")
            raise LayerFault("truncated archive: no end-of-archive marker")


class _Extractor:
    """Writes tar members into the tree, keeping what later members may refer to."""

    def __init__(self, tree: DirTree, limits: UnpackLimits, lower: LowerView) -> None:
        self.tree = tree
        self.limits = limits
        self.lower = lower
        tree.on_create = self._implied_directory
        self.report: dict[str, int] = {}
        self.current: str | None = None
        self.previous: str | None = None
        self._entries = 0
        self._file_bytes = 0
        # Non-directories written by this layer: the only hard link targets.
        self._written: set[Parts] = set()
        # Directories' metadata, applied at the end, deepest first: creating
        # entries changes a directory's mtime, a default ACL would leak into
        # the entries made below it, and a read-only mode would be in the way.
        self._dirs: dict[Parts, tuple[int, Meta]] = {}

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.current = member.name
        self.tree.trim()
        self._entries += 1
        self._check_entries()
        parts = split_path(member.name, "path", self.limits.max_path_bytes)
        if parts and parts[-1].startswith(whiteout.OCI_PREFIX):
            self._skip_data(tar, member)
            self._whiteout(parts)
        elif member.isdir():
            self._directory(parts, self._meta(member))
        elif not parts:
            raise LayerFault("the root of a layer must be a directory")
        elif member.islnk():
            self._hardlink(parts, member)
        elif member.isreg():
            self._regular(tar, member, parts, self._meta(member))
        elif member.issym():
            self._symlink(parts, member, self._meta(member))
        elif member.ischr() or member.isblk():
            self._device(parts, member, self._meta(member))
        elif member.isfifo():
            self._fifo(parts, self._meta(member))
        else:
            raise LayerFault(f"unsupported entry type {member.type!r}")
        self.previous, self.current = self.current, None

    def finish(self) -> None:
        """Apply the directories' metadata, deepest first."""
        if () not in self._dirs:
            # No "./" entry: the root shows what the lower layers' root does.
            self._implied_directory((), self.tree.root_fd)
        for parts, (ino, meta) in sorted(
            self._dirs.items(), key=lambda item: len(item[0]), reverse=True
        ):
            self.current = show(parts)
            self.tree.trim()
            try:
                fd = self.tree.open_dir(parts, create=False)
            except LayerFault:
                continue  # replaced by a later entry
            if os.fstat(fd).st_ino == ino:
                self._apply_fd(fd, meta)
        self.current = None
        if () not in self._dirs:
            os.fchmod(self.tree.root_fd, 0o755)

    def _implied_directory(self, parts: Parts, fd: int) -> None:
        if parts:
            self.report["implied_directories"] = self.report.get("implied_directories", 0) + 1
        meta = self.lower.directory(parts)
        if meta is not None:
            self._dirs[parts] = (os.fstat(fd).st_ino, meta)

    def _check_entries(self) -> None:
        if self._entries + self.tree.created > self.limits.max_entries:
            raise LimitFault(f"more than {self.limits.max_entries} entries")

    def _parent(self, parts: Parts) -> int:
        fd = self.tree.open_dir(parts[:-1], create=True)
        self._check_entries()
        return fd

    def _clear(self, parent_fd: int, parts: Parts) -> os.stat_result | None:
        """Remove what an earlier entry put at this path: the later one wins."""
        st = lstat_at(parent_fd, parts[-1])
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                self.tree.forget(parts)
            remove_at(parent_fd, parts[-1], st)
        return st

    # -- entry types --------------------------------------------------------

    def _whiteout(self, parts: Parts) -> None:
        base = parts[-1]
        if base.startswith(whiteout.OCI_META_PREFIX) and base != whiteout.OCI_OPAQUE:
            return
        name = base[len(whiteout.OCI_PREFIX) :]
        if name in ("", ".", ".."):
            raise LayerFault(f"invalid whiteout {base!r}")
        try:
            parent = self._parent(parts)
        except NotADirectoryFault:
            # Below a non-directory (or symlink) of this layer, which already
            # hides everything lower layers had there: nothing to delete.
            # umoci writes these ("d" replaced by a file, then "d/.wh.y").
            return
        if base == whiteout.OCI_OPAQUE:
            whiteout.mark_opaque(parent)
            return
        st = lstat_at(parent, name)
        if st is None:
            whiteout.make_whiteout(parent, name)
        elif stat.S_ISDIR(st.st_mode):
            # Whiteouts hide only what lower layers have: this layer's own
            # directory stays, but nothing of the lower one shows through.
            whiteout.mark_opaque(self.tree.open_dir((*parts[:-1], name), create=False))
        # A non-directory of this layer already hides the lower entry.

    def _directory(self, parts: Parts, meta: Meta) -> None:
        if not parts:
            self._dirs[()] = (os.fstat(self.tree.root_fd).st_ino, meta)
            return
        parent = self._parent(parts)
        name = parts[-1]
        st = lstat_at(parent, name)
        replaced = st is not None and not stat.S_ISDIR(st.st_mode)
        if replaced:
            self._clear(parent, parts)
        if st is None or replaced:
            os.mkdir(name, 0o700, dir_fd=parent)
        fd = self.tree.open_dir(parts, create=False)
        if replaced:
            # The entry this directory replaces (a whiteout, or a file that
            # itself replaced a lower directory) removed the lower directory:
            # none of its content may show through.
            whiteout.mark_opaque(fd)
        self._dirs[parts] = (os.fstat(fd).st_ino, meta)

    def _regular(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: Parts, meta: Meta
    ) -> None:
        parent = self._parent(parts)
        self._clear(parent, parts)
        data = tar.extractfile(member)
        if data is None:
            raise LayerFault("no data for a regular file")
        fd = os.open(parts[-1], _NEW_FILE, 0o600, dir_fd=parent)
        try:
            while chunk := data.read(CHUNK):
                self._file_bytes += len(chunk)
                if self._file_bytes > self.limits.max_expanded_bytes:
                    raise LimitFault(
                        f"files add up to more than {self.limits.max_expanded_bytes} bytes"
                    )
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            self._apply_fd(fd, meta)
        finally:
            os.close(fd)
        self._written.add(parts)

    def _hardlink(self, parts: Parts, member: tarfile.TarInfo) -> None:
        target = split_path(member.linkname, "hard link target", self.limits.max_path_bytes)
        if target == parts:
            raise LayerFault("hard link to itself")
        if target not in self._written:
            raise LayerFault(
                f"hard link to {member.linkname!r}, which is not an earlier entry of this layer"
            )
        parent = self._parent(parts)
        self._clear(parent, parts)
        target_parent = self.tree.open_dir(target[:-1], create=False)
        # The link shares the target's inode and so its metadata: the
        # header's owner and mode (normally the same) are not applied.
        os.link(
            target[-1],
            parts[-1],
            src_dir_fd=target_parent,
            dst_dir_fd=parent,
            follow_symlinks=False,
        )
        self._written.add(parts)

    def _symlink(self, parts: Parts, member: tarfile.TarInfo, meta: Meta) -> None:
        target = member.linkname
        if not target or "\0" in target:
            raise LayerFault("invalid symbolic link target")
        if len(target.encode("utf-8", "surrogateescape")) > self.limits.max_path_bytes:
            raise LimitFault(f"symbolic link target longer than {self.limits.max_path_bytes} bytes")
        parent = self._parent(parts)
        self._clear(parent, parts)
        # The target is stored, never followed: any string is safe here.
        os.symlink(target, parts[-1], dir_fd=parent)
        self._apply_at(parent, parts[-1], meta, symlink=True)
        self._written.add(parts)

    def _device(self, parts: Parts, member: tarfile.TarInfo, meta: Meta) -> None:
        if not self.limits.allow_devices:
            raise LayerFault("device nodes are not allowed")
        if member.ischr() and member.devmajor == 0 and member.devminor == 0:
            raise LayerFault("a character device 0/0 is an overlayfs whiteout")
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        device = os.makedev(member.devmajor, member.devminor)
        parent = self._parent(parts)
        self._clear(parent, parts)
        os.mknod(parts[-1], kind | 0o600, device, dir_fd=parent)
        self._apply_at(parent, parts[-1], meta, symlink=False)
        self._written.add(parts)

    def _fifo(self, parts: Parts, meta: Meta) -> None:
        parent = self._parent(parts)
        self._clear(parent, parts)
        os.mkfifo(parts[-1], 0o600, dir_fd=parent)
        self._apply_at(parent, parts[-1], meta, symlink=False)
        self._written.add(parts)

    # -- metadata -----------------------------------------------------------

    def _skip_data(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        # Read it here, not in tarfile's next(), which runs on a header budget.
        if member.isreg() and member.size:
            data = tar.extractfile(member)
            while data is not None and data.read(CHUNK):
                pass

    def _meta(self, member: tarfile.TarInfo) -> Meta:
        for what, value in (("uid", member.uid), ("gid", member.gid)):
            if not 0 <= value <= _MAX_ID:
                raise LayerFault(f"{what} {value} is out of range")
        mtime_ns = _pax_time_ns(member, "mtime")
        if mtime_ns is None:
            mtime_ns = int(member.mtime) * 1_000_000_000
        atime_ns = _pax_time_ns(member, "atime")
        return Meta(
            uid=member.uid,
            gid=member.gid,
            mode=member.mode & 0o7777,
            atime_ns=mtime_ns if atime_ns is None else atime_ns,
            mtime_ns=mtime_ns,
            xattrs=self._xattrs(member),
        )

    def _xattrs(self, member: tarfile.TarInfo) -> dict[str, bytes]:
        xattrs: dict[str, bytes] = {}
        for key, value in member.pax_headers.items():
            if not key.startswith(_XATTR_PAX_PREFIX):
                continue
            name = key[len(_XATTR_PAX_PREFIX) :]
            # tarfile decoded the value with surrogateescape: this gives back
            # the exact bytes, binary ones (security.capability) included.
            raw = value.encode("utf-8", "surrogateescape")
            if not name or "\0" in name or len(name.encode("utf-8", "surrogateescape")) > 255:
                raise LayerFault(f"invalid extended attribute name {name!r}")
            if whiteout.is_overlay_xattr(name):
                raise LayerFault(f"extended attribute {name!r} is reserved for overlayfs")
            if len(raw) > self.limits.max_xattr_bytes:
                raise LimitFault(
                    f"extended attribute {name!r} larger than {self.limits.max_xattr_bytes} bytes"
                )
            xattrs[name] = raw
        return xattrs

    def _apply_fd(self, fd: int, meta: Meta) -> None:
        # Order matters: chown(2) clears setuid/setgid and security.capability,
        # and a write would clear them too; the times go last.
        os.fchown(fd, meta.uid, meta.gid)
        os.fchmod(fd, meta.mode)
        for name, value in meta.xattrs.items():
            _set_xattr(fd, name, value, follow_symlinks=True)
        os.utime(fd, ns=(meta.atime_ns, meta.mtime_ns))

    def _apply_at(self, parent_fd: int, name: str, meta: Meta, *, symlink: bool) -> None:
        os.chown(name, meta.uid, meta.gid, dir_fd=parent_fd, follow_symlinks=False)
        if not symlink:
            # Just made by mknod/mkfifo, so not a link: chmod by name is safe
            # (Linux has no lchmod).
            os.chmod(name, meta.mode, dir_fd=parent_fd)
        for key, value in meta.xattrs.items():
            _set_xattr(proc_path(parent_fd, name), key, value, follow_symlinks=False)
        os.utime(name, ns=(meta.atime_ns, meta.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)


def _set_xattr(target: int | str, name: str, value: bytes, *, follow_symlinks: bool) -> None:
    try:
        os.setxattr(target, name, value, follow_symlinks=follow_symlinks)
    except OSError as e:
        raise LayerFault(f"cannot set extended attribute {name!r}: {e.strerror}") from e


def _pax_time_ns(member: tarfile.TarInfo, key: str) -> int | None:
    """A PAX time in nanoseconds, exactly (tarfile's float loses precision)."""
    raw = member.pax_headers.get(key)
    if raw is None:
        return None
    match = _PAX_TIME.fullmatch(raw)
    if match is None:
        raise LayerFault(f"invalid PAX {key} {raw!r}")
    sign, seconds, fraction = match.groups()
    ns = int(seconds) * 1_000_000_000 + int((fraction or "")[:9].ljust(9, "0"))
    return -ns if sign else ns
