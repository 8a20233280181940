"""Registry configuration: a subset of containers-registries.conf(5) and
containers-certs.d(5).

    unqualified-search-registries = ["registry.example", "docker.io"]

    [[registry]]
    prefix = "docker.io"            # optional; defaults to location
    location = "registry.example:5000"
    insecure = false                # plain HTTP / unverified TLS allowed
    blocked = false
    [[registry.mirror]]
    location = "mirror.example"
    insecure = false

``/etc/podman-sd/registries.conf`` is read, or ``/etc/containers/registries.conf``
when it is absent. CAs for a registry come from ``certs.d/HOST[:PORT]/*.crt``
(client certificates from ``*.cert`` with the matching ``*.key``) in
``/etc/podman-sd/certs.d``, then ``/etc/containers/certs.d``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podman_sd import paths
from podman_sd.errors import ImageError
from podman_sd.image.reference import ImageRef, Transport, parse_reference

SYSTEM_CONFIG = Path("/etc/containers/registries.conf")
SYSTEM_CERTS_D = Path("/etc/containers/certs.d")


@dataclass(frozen=True)
class Endpoint:
    """One place to contact for a registry: the registry itself or a mirror."""

    location: str  # host[:port][/path prefix]
    insecure: bool = False

    @property
    def host(self) -> str:
        return self.location.split("/", 1)[0]


@dataclass(frozen=True)
class RegistryEntry:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class RegistriesConf:
    search: tuple[str, ...] = ()
    registries: tuple[RegistryEntry, ...] = ()
    source: str = "(defaults)"

    def entry_for(self, name: str) -> RegistryEntry | None:
        """The [[registry]] whose prefix matches NAME (host/repo) most specifically."""
        best: RegistryEntry | None = None
        for entry in self.registries:
            prefix = entry.prefix
            if (
                name == prefix or name.startswith(prefix + "/") or name.startswith(prefix + ":")
            ) and (best is None or len(prefix) > len(best.prefix)):
                best = entry
        return best

    def endpoints(self, ref: ImageRef) -> tuple[tuple[Endpoint, str], ...]:
        """Where to fetch REF from, in order: mirrors first, then the registry.

        Each item is an endpoint and the repository path on it; a prefix
        rewritten to another location keeps the rest of the name.
        """
        name = f"{ref.registry}/{ref.repository}"
        entry = self.entry_for(name)
        if entry is None:
            return ((Endpoint(ref.registry), ref.repository),)
        if entry.blocked:
            raise ImageError(
                f"image {ref}: the registry {entry.prefix} is blocked in {self.source}"
            )
        rest = name[len(entry.prefix) :].lstrip("/")
        out: list[tuple[Endpoint, str]] = []
        for endpoint in (*entry.mirrors, Endpoint(entry.location, entry.insecure)):
            host, _, path = endpoint.location.partition("/")
            repository = "/".join(p for p in (path, rest) if p)
            out.append((Endpoint(host, endpoint.insecure), repository))
        return tuple(out)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ImageError(f"{where}: expected true or false, got {value!r}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ImageError(f"{where}: expected a non-empty string, got {value!r}")
    return value.removeprefix("https://").removeprefix("http://").rstrip("/")


def parse_registries_conf(text: str, source: str) -> RegistriesConf:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ImageError(f"{source}: not valid TOML ({err})") from None
    search_raw = doc.get("unqualified-search-registries", [])
    if not isinstance(search_raw, list):
        raise ImageError(f"{source}: unqualified-search-registries must be a list of hosts")
    search = tuple(_str(s, f"{source}: unqualified-search-registries") for s in search_raw)
    entries: list[RegistryEntry] = []
    registry_raw = doc.get("registry", [])
    if not isinstance(registry_raw, list):
        raise ImageError(f"{source}: registry must be an array of tables ([[registry]])")
    for i, table in enumerate(registry_raw):
        where = f"{source}: registry[{i}]"
        if not isinstance(table, dict):
            raise ImageError(f"{where}: expected a table")
        location = _str(table.get("location", table.get("prefix")), f"{where}.location")
        prefix = _str(table.get("prefix", location), f"{where}.prefix")
        mirrors_raw = table.get("mirror", [])
        if not isinstance(mirrors_raw, list):
            raise ImageError(f"{where}.mirror: expected an array of tables ([[registry.mirror]])")
        mirrors = tuple(
            Endpoint(
                _str(
                    m.get("location") if isinstance(m, dict) else m, f"{where}.mirror[{j}].location"
                ),
                _bool(m.get("insecure", False), f"{where}.mirror[{j}].insecure")
                if isinstance(m, dict)
                else False,
            )
            for j, m in enumerate(mirrors_raw)
        )
        entries.append(
            RegistryEntry(
                prefix=prefix,
                location=location,
                insecure=_bool(table.get("insecure", False), f"{where}.insecure"),
                blocked=_bool(table.get("blocked", False), f"{where}.blocked"),
                mirrors=mirrors,
            )
        )
    return RegistriesConf(search, tuple(entries), source)


def load_registries_conf(path: Path | None = None) -> RegistriesConf:
    candidates = (
        [path] if path is not None else [paths.config_dir() / "registries.conf", SYSTEM_CONFIG]
    )
    for candidate in candidates:
        try:
            text = candidate.read_text()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise ImageError(f"cannot read {candidate}: {err.strerror}") from None
        return parse_registries_conf(text, str(candidate))
    return RegistriesConf()


def is_unqualified(text: str) -> bool:
    """A short name (``busybox``, ``library/busybox:1``) with no registry host."""
    if text.startswith(("oci:", "oci-archive:")):
        return False
    text = text.removeprefix("docker://")
    first, slash, _ = text.partition("/")
    if not slash:
        return True
    return not ("." in first or ":" in first or first == "localhost")


def candidates(text: str, conf: RegistriesConf) -> list[ImageRef]:
    """The references to try for what the user wrote, in order.

    A fully qualified name is itself; a short name is tried in each
    unqualified-search registry (docker.io when none is configured).
    """
    ref = parse_reference(text)
    if ref.transport is not Transport.DOCKER or not is_unqualified(text) or not conf.search:
        return [ref]
    return [
        parse_reference(f"{registry}/{text.removeprefix('docker://')}") for registry in conf.search
    ]


# -- certs.d ------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    """The CA files and client certificate pairs certs.d has for one host."""

    cas: tuple[Path, ...] = ()
    client: tuple[tuple[Path, Path], ...] = field(default=())


def certs_dirs() -> tuple[Path, ...]:
    return (paths.config_dir() / "certs.d", SYSTEM_CERTS_D)


def tls_files(host: str, dirs: tuple[Path, ...] | None = None) -> TLSFiles:
    """certs.d/HOST[:PORT]/: the first directory that has one for HOST wins."""
    for base in dirs if dirs is not None else certs_dirs():
        directory = base / host
        if not directory.is_dir():
            continue
        files = sorted(p for p in directory.iterdir() if p.is_file())
        cas = tuple(p for p in files if p.suffix == ".crt")
        client = tuple(
            (p, p.with_suffix(".key"))
            for p in files
            if p.suffix == ".cert" and p.with_suffix(".key").is_file()
        )
        return TLSFiles(cas, client)
    return TLSFiles()
