"""An image source speaking the OCI distribution API v2 (``docker://``).

The only module that speaks HTTP to registries (requests). It hands ``pull``
unverified bytes; ``pull`` and the store check every digest.

- Manifests by tag or digest with the Accept headers for OCI manifests and
  indexes and Docker schema 2 manifests and lists, size-limited before and
  while reading.
- Auth: anonymous first; on a 401 the ``WWW-Authenticate`` challenge decides:
  ``Basic`` with the auth.json credentials, or ``Bearer``: a token from the
  realm (with those credentials, if any) for ``repository:REPO:pull``.
- TLS: system CAs plus ``certs.d/HOST[:PORT]/*.crt``, in one SSL context per
  host that its adapter hands every connection (``_HostAdapter``): requests
  would let ``REQUESTS_CA_BUNDLE`` override a ``Session.verify``, which would
  silently drop a registry's own CA, and load a CA bundle per connection.
- Timeouts on connect and on every read; retries with exponential backoff on
  connection errors, 429 and 5xx; a blob download that breaks off resumes
  with ``Range`` (a registry that ignores it is read from the start again,
  skipping what was already passed on).
- Signatures: the cosign attachments of a manifest (``sha256-HEX.sig``), as
  untrusted bytes for the trust policy to judge.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import requests.adapters
import requests.utils
import urllib3.exceptions

from podman_sd.errors import ImageError
from podman_sd.fetch.auth import AuthFile, Credentials
from podman_sd.fetch.registries import Endpoint, RegistriesConf, TLSFiles, tls_files
from podman_sd.image.reference import ImageRef, validate_digest
from podman_sd.image.spec import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_DOCUMENT_SIZE,
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    document_media_type,
)
from podman_sd.image.store import CHUNK
from podman_sd.trust.source import (
    COSIGN_PAYLOAD_TYPE,
    COSIGN_SIGNATURE_ANNOTATION,
    MAX_SIGSTORE_PAYLOAD_SIZE,
    MAX_SIGSTORE_SIGNATURES,
    SigstoreSignature,
)

MANIFEST_ACCEPT = ", ".join(
    (MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST)
)
USER_AGENT = "podman-sd-fetch/0.1"
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


@dataclass(frozen=True)
class Settings:
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 4  # attempts after the first
    backoff: float = 0.5  # seconds before the first retry; doubles each time


class NotFound(ImageError):
    """The registry answered 404: no such repository, manifest or blob."""


class _Retry(Exception):
    """A failure worth another attempt (connection error, 429, 5xx)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _registry_error(response: requests.Response) -> str:
    """The first error code and message of a registry's JSON error body."""
    try:
        errors = json.loads(response.content[:65536]).get("errors") or []
        first = errors[0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` -> ("bearer", {"realm": …, "service": …})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {k.lower(): v for k, v in _CHALLENGE_PARAM.findall(rest)}


def system_ca_locations() -> tuple[str | None, str | None]:
    """(cafile, capath) of the system CAs.

    OpenSSL's hashed directory when the system has one: certificates are
    then read when a chain needs them, where loading the whole bundle costs
    about 20 ms of CPU; else requests' bundle."""
    capath = ssl.get_default_verify_paths().capath
    if (
        capath
        and os.path.isdir(capath)
        and any(len(name) == 10 and name[8] == "." for name in os.listdir(capath))
    ):
        return None, capath
    return requests.utils.DEFAULT_CA_BUNDLE_PATH, None


class _HostAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter for one registry host, with one prepared SSL context.

    The context holds the host's CAs and client certificate, so every
    connection skips what urllib3 would otherwise do per connection (load a
    CA bundle, about 20 ms each, GIL held: six layers, six loads), and what
    the environment says (REQUESTS_CA_BUNDLE would otherwise replace a
    registry's own CA) plays no part.
    """

    def __init__(self, context: ssl.SSLContext, verify: bool) -> None:
        self._context = context
        self._verify = verify
        super().__init__(pool_maxsize=16)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        # requests' own method is untyped.
        super().init_poolmanager(*args, ssl_context=self._context, **kwargs)  # type: ignore[no-untyped-call]

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED" if self._verify else "CERT_NONE"
        conn.ca_certs = conn.ca_cert_dir = None
        conn.cert_file = conn.key_file = None


class TLSAdapters:
    """One adapter per host: the system CAs plus certs.d's, and its client certificate."""

    def __init__(self, certs_dirs: tuple[Path, ...] | None) -> None:
        self._dirs = certs_dirs
        self._adapters: dict[tuple[str, bool], _HostAdapter] = {}
        self._lock = threading.Lock()

    def adapter_for(self, host: str, insecure: bool) -> _HostAdapter:
        with self._lock:
            key = (host, insecure)
            if key not in self._adapters:
                self._adapters[key] = _HostAdapter(self._context(host, insecure), not insecure)
            return self._adapters[key]

    def _context(self, host: str, insecure: bool) -> ssl.SSLContext:
        files: TLSFiles = tls_files(host, self._dirs)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # urllib3 matches the host name itself (also an IP address, which
        # OpenSSL's check would need as SNI, and urllib3 sends none for it);
        # it sets verify_mode from the adapter's cert_reqs.
        context.check_hostname = False
        if not insecure:
            cafile, capath = system_ca_locations()
            with contextlib.suppress(OSError):  # no system CAs: only certs.d's count
                context.load_verify_locations(cafile, capath)
            for ca in files.cas:
                try:
                    context.load_verify_locations(cafile=str(ca))
                except (OSError, ssl.SSLError) as err:
                    raise ImageError(f"cannot read the CA {ca}: {err}") from None
        if files.client:
            cert, key = files.client[0]
            try:
                context.load_cert_chain(str(cert), str(key))
            except (OSError, ssl.SSLError) as err:
                raise ImageError(f"cannot load the client certificate {cert}: {err}") from None
        return context

    def mount(self, session: requests.Session, host: str, insecure: bool) -> None:
        """Let SESSION reach HOST through its adapter (once per session)."""
        prefix = f"https://{host}/"
        if prefix not in session.adapters:
            session.mount(prefix, self.adapter_for(host, insecure))

    def close(self) -> None:
        with self._lock:
            for adapter in self._adapters.values():
                adapter.close()  # type: ignore[no-untyped-call]
            self._adapters.clear()


class RegistryClient:
    """HTTP to one repository on one registry endpoint, safe to use from threads."""

    def __init__(
        self,
        ref: ImageRef,
        endpoint: Endpoint,
        repository: str,
        credentials: Credentials | None,
        auth_source: str,
        tls: TLSAdapters,
        settings: Settings,
    ) -> None:
        self.ref = ref
        self.host = endpoint.host
        self.insecure = endpoint.insecure
        self.repository = repository
        self.credentials = credentials
        self.auth_source = auth_source
        self.settings = settings
        self._tls = tls
        self._scheme = "https"
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._authorization: str | None = None

    # -- plumbing ---------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def _what(self) -> str:
        return f"image {self.ref}: registry {self.host}"

    def _url(self, path: str) -> str:
        return f"{self._scheme}://{self.host}/v2/{self.repository}/{path}"

    def _raw_request(
        self, url: str, headers: dict[str, str], stream: bool, host: str | None = None
    ) -> requests.Response:
        session = self._session()
        self._tls.mount(session, host or self.host, self.insecure)
        try:
            # A redirect to another host (a CDN) is verified against the
            # system CAs by requests' own adapter.
            return session.get(
                url,
                headers=headers,
                stream=stream,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=True,
            )
        except requests.exceptions.SSLError as err:
            if self.insecure and self._scheme == "https":
                raise _Retry("TLS failed; trying plain HTTP (insecure registry)") from None
            raise ImageError(
                f"{self._what()}: TLS verification failed ({_short(err)}); put the registry's CA "
                f"into /etc/podman-sd/certs.d/{host or self.host}/ca.crt"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as err:
            raise _Retry(_short(err)) from None

    def request(
        self, path: str, headers: dict[str, str] | None = None, *, what: str
    ) -> requests.Response:
        """GET PATH under /v2/REPO/ with auth and retries; the response is streamed.

        Returns a 2xx response; raises ImageError with a one-line reason.
        """
        attempt = 0
        tried_auth = False
        while True:
            send = dict(headers or {})
            if self._authorization:
                send["Authorization"] = self._authorization
            try:
                response = self._raw_request(self._url(path), send, stream=True)
                if response.status_code == 401 and not tried_auth:
                    tried_auth = True
                    challenge = response.headers.get("WWW-Authenticate", "")
                    response.close()
                    self._authenticate(challenge)
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    response.close()
                    raise _Retry(f"HTTP {response.status_code}")
            except _Retry as retry:
                if self.insecure and self._scheme == "https" and "TLS" in retry.why:
                    self._scheme = "http"
                    continue
                attempt += 1
                if attempt > self.settings.retries:
                    raise ImageError(
                        f"{self._what()}: {what}: {retry.why}; gave up after {attempt} attempts"
                    ) from None
                time.sleep(self.settings.backoff * 2 ** (attempt - 1))
                continue
            if response.ok:
                return response
            self._fail(response, what)

    def _fail(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        detail = _registry_error(response)
        response.close()
        suffix = f" ({detail})" if detail else ""
        if status == 401:
            if self.credentials is None:
                raise ImageError(
                    f"{self._what()}: authentication required (HTTP 401){suffix}; add credentials "
                    f"for {self.host} to {self.auth_source} (containers-auth.json format)"
                )
            raise ImageError(
                f"{self._what()}: the credentials for user {self.credentials.username!r} from "
                f"{self.auth_source} were rejected (HTTP 401){suffix}; check them"
            )
        if status == 403:
            raise ImageError(
                f"{self._what()}: access to {self.repository} denied (HTTP 403){suffix}; check "
                f"that the user in {self.auth_source} may pull it"
            )
        if status == 404:
            raise NotFound(
                f"{self._what()}: {what} not found (HTTP 404){suffix}; check the repository "
                "name and the tag or digest"
            )
        raise ImageError(f"{self._what()}: {what}: HTTP {status}{suffix}")

    # -- authentication -----------------------------------------------------

    def _authenticate(self, header: str) -> None:
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if self.credentials is None:
                return  # the retried request fails with a clear 401 message
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            self._authorization = f"Basic {base64.b64encode(pair).decode()}"
        elif scheme == "bearer":
            self._authorization = f"Bearer {self._token(params)}"
        else:
            raise ImageError(
                f"{self._what()}: unsupported authentication scheme {scheme or header!r}"
            )

    def _token(self, params: dict[str, str]) -> str:
        realm = params.get("realm", "")
        realm_url = urllib.parse.urlsplit(realm)
        if realm_url.scheme not in ("https", "http") or not realm_url.hostname:
            raise ImageError(f"{self._what()}: bad token realm {realm!r} in its challenge")
        if realm_url.scheme == "http" and not self.insecure:
            raise ImageError(
                f"{self._what()}: the token realm {realm} is not HTTPS; refusing to send "
                "credentials (mark the registry insecure in registries.conf to allow it)"
            )
        query = {"scope": params.get("scope") or f"repository:{self.repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        realm_host = realm_url.netloc
        session = self._session()
        self._tls.mount(session, realm_host, self.insecure)
        attempt = 0
        while True:
            try:
                response = session.get(
                    realm,
                    params=query,
                    auth=(self.credentials.username, self.credentials.password)
                    if self.credentials
                    else None,
                    timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                )
            except requests.exceptions.SSLError as err:
                raise ImageError(
                    f"{self._what()}: TLS verification of the token server {realm_host} failed "
                    f"({_short(err)}); put its CA into /etc/podman-sd/certs.d/{realm_host}/ca.crt"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as err:
                attempt += 1
                if attempt > self.settings.retries:
                    raise ImageError(
                        f"{self._what()}: token server {realm_host}: {_short(err)}"
                    ) from None
                time.sleep(self.settings.backoff * 2 ** (attempt - 1))
                continue
            break
        if response.status_code in (401, 403):
            who = (
                f"the credentials for {self.credentials.username!r} from {self.auth_source}"
                if self.credentials
                else f"anonymous access (add credentials for {self.host} to {self.auth_source})"
            )
            raise ImageError(
                f"{self._what()}: the token server {realm_host} refused {who} (HTTP {response.status_code})"
            )
        if not response.ok:
            raise ImageError(
                f"{self._what()}: the token server {realm_host} answered HTTP {response.status_code}"
            )
        try:
            doc = json.loads(response.content[:MAX_DOCUMENT_SIZE])
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ImageError(f"{self._what()}: the token server {realm_host} sent no token")
        return token

    # -- the distribution API ---------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str, str | None]:
        """(bytes, media type, Docker-Content-Digest) of the manifest REFERENCE."""
        what = f"manifest {reference}"
        response = self.request(f"manifests/{reference}", {"Accept": MANIFEST_ACCEPT}, what=what)
        with response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MAX_DOCUMENT_SIZE:
                raise ImageError(
                    f"{self._what()}: {what} is {length} bytes, larger than the limit of {MAX_DOCUMENT_SIZE}"
                )
            data = bytearray()
            try:
                for chunk in response.raw.stream(65536, decode_content=True):
                    data += chunk
                    if len(data) > MAX_DOCUMENT_SIZE:
                        raise ImageError(
                            f"{self._what()}: {what} is larger than the limit of {MAX_DOCUMENT_SIZE} bytes"
                        )
            except (urllib3.exceptions.HTTPError, OSError) as err:
                raise ImageError(f"{self._what()}: {what}: connection broke off ({err})") from None
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            return bytes(data), media_type, response.headers.get("Docker-Content-Digest")

    def blob_chunks(self, descriptor: Descriptor) -> Iterator[bytes]:
        """The blob's bytes, resuming with Range after a broken connection."""
        what = f"blob {descriptor.digest}"
        received = 0
        failures = 0
        while True:
            headers = {"Range": f"bytes={received}-"} if received else {}
            response = self.request(f"blobs/{descriptor.digest}", headers, what=what)
            skip = 0
            if received and response.status_code == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {received}-"):
                    response.close()
                    raise ImageError(
                        f"{self._what()}: {what}: resumed at the wrong offset ({content_range!r})"
                    )
            elif received:
                skip = received  # Range ignored: the whole blob again
            progressed = False
            try:
                with response:
                    for chunk in response.raw.stream(CHUNK, decode_content=False):
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk, skip = chunk[skip:], 0
                        received += len(chunk)
                        progressed = True
                        yield chunk
                if skip or received < descriptor.size:
                    raise urllib3.exceptions.ProtocolError(
                        f"the response ended after {received} of {descriptor.size} bytes"
                    )
                return
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
                failures = 1 if progressed else failures + 1
                if failures > self.settings.retries:
                    raise ImageError(
                        f"{self._what()}: {what}: download broke off after {received} of "
                        f"{descriptor.size} bytes ({_short(err)}); gave up after {failures} attempts"
                    ) from None
                time.sleep(self.settings.backoff * 2 ** (failures - 1))


def _short(err: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, on one line."""
    text = str(err)
    match = re.search(r"\((?:Caused by )?\w+\((.*)\)\)\s*$", text)
    if match:
        text = match.group(1)
    # urllib3 puts the connection object's repr in front: "<...HTTPSConnection
    # object at 0x7f...>: Failed to establish a new connection: ...".
    text = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>: ", "", text).strip("'\" ")
    return " ".join(text.split())[:300]


class RegistrySource:
    """``docker://`` references: mirrors from registries.conf first, then the registry."""

    def __init__(
        self,
        ref: ImageRef,
        conf: RegistriesConf,
        auth: AuthFile,
        settings: Settings | None = None,
        certs_dirs: tuple[Path, ...] | None = None,
    ) -> None:
        self.ref = ref
        self.settings = settings or Settings()
        self._tls = TLSAdapters(certs_dirs)
        self._clients = [
            RegistryClient(
                ref,
                endpoint,
                repository,
                auth.lookup(endpoint.host, repository) or auth.lookup(ref.registry, ref.repository),
                auth.source,
                self._tls,
                self.settings,
            )
            for endpoint, repository in conf.endpoints(ref)
        ]
        self._client = self._clients[-1]
        self._manifests: dict[str, bytes] = {}

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._tls.close()

    def describe(self) -> str:
        return str(self.ref)

    def resolve(self) -> Descriptor:
        reference = self.ref.digest or self.ref.tag or "latest"
        error: ImageError | None = None
        for client in self._clients:
            try:
                data, media_type, header_digest = client.get_manifest(reference)
            except ImageError as err:
                error = err  # a mirror that fails: try the next, then the registry
                continue
            self._client = client
            break
        else:
            assert error is not None
            raise error
        actual = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if self.ref.digest is None and header_digest and header_digest != actual:
            raise ImageError(
                f"image {self.ref}: registry {self._client.host} announced digest {header_digest} "
                f"for content with digest {actual}"
            )
        digest = self.ref.digest or actual
        self._manifests[digest] = data
        if media_type not in MANIFEST_TYPES | INDEX_TYPES:
            # A registry that sends no useful Content-Type: the document says.
            media_type = document_media_type(data, f"image {self.ref}: manifest")
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def fetch_manifest(self, descriptor: Descriptor) -> bytes:
        cached = self._manifests.get(descriptor.digest)
        if cached is not None:
            return cached
        data, _, _ = self._client.get_manifest(descriptor.digest)
        return data

    def fetch_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        return self._client.blob_chunks(descriptor)

    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        """The cosign signatures attached to MANIFEST_DIGEST; [] if there are none.

        cosign stores them as an image manifest at the tag ``sha256-HEX.sig``
        in the image's repository, one layer per signature: the blob is the
        signed payload, the annotation the base64 signature. Asked of the
        endpoint the image came from, as containers/image does. Nothing here
        is trusted: blobs are only size-capped and digest-checked so that a
        broken registry is an error rather than a confusing verdict.
        """
        what = f"image {self.ref}: sigstore signatures of {manifest_digest}"
        algorithm, _, hex_digest = validate_digest(manifest_digest, what).partition(":")
        try:
            raw, _, _ = self._client.get_manifest(f"{algorithm}-{hex_digest}.sig")
        except NotFound:
            return []
        signatures: list[SigstoreSignature] = []
        for layer in _attachment_layers(raw, f"{what}: attachment manifest"):
            if layer.media_type != COSIGN_PAYLOAD_TYPE:
                continue  # other attachments (attestations, SBOMs): not signatures
            if len(signatures) == MAX_SIGSTORE_SIGNATURES:
                raise ImageError(f"{what}: more than {MAX_SIGSTORE_SIGNATURES} signatures")
            payload = self._payload(layer, what)
            signature = layer.annotation(COSIGN_SIGNATURE_ANNOTATION) or ""
            signatures.append(SigstoreSignature(payload, signature, layer.media_type))
        return signatures

    def _payload(self, layer: Descriptor, what: str) -> bytes:
        if layer.size > MAX_SIGSTORE_PAYLOAD_SIZE:
            raise ImageError(
                f"{what}: payload {layer.digest} is {layer.size} bytes, larger than the limit "
                f"of {MAX_SIGSTORE_PAYLOAD_SIZE}"
            )
        data = bytearray()
        for chunk in self._client.blob_chunks(layer):
            data += chunk
            if len(data) > layer.size:
                raise ImageError(
                    f"{what}: payload {layer.digest} is larger than its {layer.size} bytes"
                )
        actual = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if actual != layer.digest:
            raise ImageError(f"{what}: payload {layer.digest}: content has digest {actual}")
        return bytes(data)


def _attachment_layers(raw: bytes, what: str) -> list[Descriptor]:
    """The layers of a cosign attachment manifest (OCI or Docker schema 2).

    ``parse_manifest`` would refuse them: their media types are not layers
    one can unpack.
    """
    if document_media_type(raw, what) not in MANIFEST_TYPES:
        raise ImageError(f"{what}: not an image manifest")
    doc = json.loads(raw)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{what}: layers must be a list")
    found = []
    for index, entry in enumerate(layers):
        where = f"{what}: layers[{index}]"
        if not isinstance(entry, dict):
            raise ImageError(f"{where}: expected a descriptor object")
        media_type, digest, size = entry.get("mediaType"), entry.get("digest"), entry.get("size")
        annotations = entry.get("annotations") or {}
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise ImageError(f"{where}: a descriptor needs mediaType and digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ImageError(f"{where}: size must be a non-negative integer")
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise ImageError(f"{where}: annotations must map names to strings")
        found.append(
            Descriptor(
                media_type=media_type,
                digest=validate_digest(digest, where),
                size=size,
                annotations=tuple(sorted((str(k), v) for k, v in annotations.items())),
            )
        )
    return found
