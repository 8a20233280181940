"""The byte streams of one layer: hash, decompress and bound, in one pass.

``HashingReader`` sits on the blob as it arrives and hashes it (the layer
digest); a decoder inflates it; ``TarStream`` hashes what comes out (the diff
ID) and enforces the size and ratio limits before tarfile ever sees a byte.
Nothing is read twice and nothing is buffered beyond one chunk.
"""

from __future__ import annotations

import enum
import hashlib
import re
import zlib
from collections.abc import Mapping
from typing import BinaryIO, Final, Protocol

import zstandard

from podman_sd.errors import UnpackError
from podman_sd.unpack.fault import LayerFault, LimitFault
from podman_sd.unpack.limits import UnpackLimits

CHUNK: Final = 1 << 16


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


MEDIA_TYPES: Final[Mapping[str, Compression]] = {
    "application/vnd.oci.image.layer.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
}

_DIGEST_HEX_LENGTH: Final = {"sha256": 64, "sha512": 128}


def digest_algorithm(digest: str | None, what: str) -> str:
    """The hash algorithm of an OCI digest ``ALGO:HEX`` (sha256 when None)."""
    if digest is None:
        return "sha256"
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None or not re.fullmatch(f"[0-9a-f]{{{length}}}", encoded):
        raise UnpackError(f"invalid {what} {digest!r}: expected sha256:HEX or sha512:HEX")
    return algorithm


class Reader(Protocol):
    def read(self, size: int, /) -> bytes: ...


class HashingReader:
    """Reads the blob as given, hashing and counting every byte."""

    def __init__(self, src: BinaryIO, algorithm: str) -> None:
        self._src = src
        self._hash = hashlib.new(algorithm)
        self.algorithm = algorithm
        self.count = 0

    def read(self, size: int, /) -> bytes:
        data = self._src.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        """Hash the rest of the blob (padding after the end of the archive)."""
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"


class GzipDecoder:
    """Inflates gzip, one member after another (RFC 1952 allows several).

    ``zlib``'s ``max_length`` bounds every output chunk, so a bomb never
    gets further than one chunk past a limit.
    """

    _WBITS: Final = 16 + zlib.MAX_WBITS  # expect a gzip header and trailer

    def __init__(self, raw: Reader) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(self._WBITS)
        self._in = b""

    def read(self, size: int, /) -> bytes:
        while True:
            if self._z.eof:
                if not self._in:
                    self._in = self._raw.read(CHUNK)
                if not self._in:
                    return b""
                self._z = zlib.decompressobj(self._WBITS)
            if not self._in:
                self._in = self._raw.read(CHUNK)
                if not self._in:
                    # zlib may still hold output for input it has consumed.
                    out = self._decompress(b"", size)
                    if out:
                        return out
                    raise LayerFault("truncated archive: the gzip stream ends early")
            out = self._decompress(self._in, size)
            self._in = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
            if out:
                return out

    def _decompress(self, data: bytes, size: int) -> bytes:
        try:
            return self._z.decompress(data, size)
        except zlib.error as e:
            raise LayerFault(f"corrupt gzip stream: {e}") from None


class ZstdDecoder:
    """Decompresses zstd frames one after another.

    ``zstandard``'s readers stop silently at a truncated frame, so this uses
    the decompression object, which tells the end of a frame (``eof``) apart
    from the end of the input. It has no output bound, so input goes in in
    small slices: a zstd block expands to at most 128 KiB and takes at least
    4 bytes, so one slice yields at most 32 MiB however hostile the frame.
    """

    _SLICE: Final = 1024
    _MAX_WINDOW: Final = 1 << 27  # zstd's default decoder limit: 128 MiB of memory

    def __init__(self, raw: Reader) -> None:
        self._raw = raw
        self._ctx = zstandard.ZstdDecompressor(max_window_size=self._MAX_WINDOW)
        self._z = self._ctx.decompressobj()
        self._in = memoryview(b"")
        self._out = memoryview(b"")

    def read(self, size: int, /) -> bytes:
        while not self._out:
            if self._z.eof:
                if not self._in:
                    self._in = memoryview(self._raw.read(CHUNK))
                if not self._in:
                    return b""
                self._z = self._ctx.decompressobj()
            if not self._in:
                self._in = memoryview(self._raw.read(CHUNK))
                if not self._in:
                    raise LayerFault("truncated archive: the zstd stream ends early")
            piece, self._in = self._in[: self._SLICE], self._in[self._SLICE :]
            try:
                self._out = memoryview(self._z.decompress(piece))
            except zstandard.ZstdError as e:
                raise LayerFault(f"corrupt zstd stream: {e}") from None
            if self._z.eof and self._z.unused_data:
                self._in = memoryview(self._z.unused_data + bytes(self._in))
        out, self._out = self._out[:size], self._out[size:]
        return bytes(out)


class TarStream:
    """The uncompressed tar stream handed to tarfile: hashed and bounded.

    ``header_budget``, when set, bounds the bytes tarfile may read before it
    returns the next member: PAX records and GNU sparse maps are parsed into
    memory, and this keeps a crafted header from growing without end.
    """

    def __init__(
        self,
        decoder: Reader,
        compressed: HashingReader,
        algorithm: str,
        limits: UnpackLimits,
        *,
        hash_output: bool,
    ) -> None:
        self._decoder = decoder
        self._compressed = compressed
        self._limits = limits
        self._hash = hashlib.new(algorithm) if hash_output else None
        self.algorithm = algorithm
        self.count = 0
        self.header_budget: int | None = None

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            size = CHUNK
        data = self._decoder.read(size)
        self.count += len(data)
        limits = self._limits
        if self.count > limits.max_expanded_bytes:
            raise LimitFault(f"layer expands to more than {limits.max_expanded_bytes} bytes")
        if (
            self.count > limits.ratio_floor_bytes
            and self.count > limits.max_ratio * self._compressed.count
        ):
            raise LimitFault(
                f"layer expands more than {limits.max_ratio} times its compressed size"
            )
        if self.header_budget is not None:
            self.header_budget -= len(data)
            if self.header_budget < 0:
                raise LimitFault(f"tar header larger than {limits.max_header_bytes} bytes")
        if self._hash is not None:
            self._hash.update(data)
        return data

    def drain(self) -> None:
        """Hash the rest of the tar stream (padding after the end-of-archive marker)."""
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        if self._hash is None:
            return self._compressed.digest()
        return f"{self.algorithm}:{self._hash.hexdigest()}"


def open_tar_stream(
    src: BinaryIO,
    compression: Compression,
    *,
    digest_algorithm: str,
    diff_id_algorithm: str,
    limits: UnpackLimits,
) -> tuple[HashingReader, TarStream]:
    """The compressed-blob reader and the tar stream decoded from it."""
    compressed = HashingReader(src, digest_algorithm)
    decoder: Reader
    if compression is Compression.GZIP:
        decoder = GzipDecoder(compressed)
    elif compression is Compression.ZSTD:
        decoder = ZstdDecoder(compressed)
    else:
        decoder = compressed
    # An uncompressed blob is its own tar stream: hash it once when both
    # digests use the same algorithm.
    hash_output = compression is not Compression.NONE or diff_id_algorithm != digest_algorithm
    stream = TarStream(decoder, compressed, diff_id_algorithm, limits, hash_output=hash_output)
    return compressed, stream
