"""Real registries inside a test host: Debian's docker-registry with TLS from
a CA made here, one instance with htpasswd basic auth and one with token
auth, served by a tiny JWT issuer; images built by umoci, pushed by skopeo."""

from __future__ import annotations

import base64
import crypt
import datetime
import ipaddress
import json
import textwrap
import time
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.testhost import TestHost

BASIC_PORT, TOKEN_PORT, ISSUER_PORT = 5443, 5444, 5445
BASIC = f"127.0.0.1:{BASIC_PORT}"
TOKEN = f"127.0.0.1:{TOKEN_PORT}"
ISSUER = f"127.0.0.1:{ISSUER_PORT}"
USER, PASSWORD = "puller", "s3cret"
TOKEN_USER, TOKEN_PASSWORD = "tokenuser", "tokenpass"


def key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def make_cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    *,
    ca: bool,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


ISSUER_SCRIPT = textwrap.dedent(
    """
    import base64, json, ssl, time, uuid
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse
    import jwt

    KEY = open("/srv/token/signing.key").read()
    LEAF = base64.b64encode(ssl.PEM_cert_to_DER_cert(open("/srv/token/signing.crt").read())).decode()
    USERS = {%(users)s}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            query = parse_qs(urlparse(self.path).query)
            user = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if USERS.get(name) == password:
                    user = name
            if user is None:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            access = []
            for scope in " ".join(query.get("scope", [])).split():
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            now = int(time.time())
            claims = {"iss": "test-issuer", "sub": user, "aud": query["service"][0],
                      "exp": now + 600, "nbf": now - 60, "iat": now, "jti": uuid.uuid4().hex,
                      "access": access}
            token = jwt.encode(claims, KEY, algorithm="RS256", headers={"x5c": [LEAF]})
            body = json.dumps({"token": token, "expires_in": 600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain("/srv/tls/server.crt", "/srv/tls/server.key")
    server = ThreadingHTTPServer(("127.0.0.1", %(port)d), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    """
)


def registry_config(port: int, name: str, auth: str) -> str:
    return textwrap.dedent(
        f"""\
        version: 0.1
        log:
          level: info
        storage:
          filesystem:
            rootdirectory: /srv/{name}/data
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:{port}
          tls:
            certificate: /srv/tls/server.crt
            key: /srv/tls/server.key
        auth:
        """
    ) + textwrap.indent(auth, "  ")


def wait_for_port(host: TestHost, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    script = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"
    while host.run("/usr/bin/python3", "-c", script, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on port {port} in the test host")
        time.sleep(0.1)


def start_registries(host: TestHost) -> str:
    """Start both registries and the issuer; returns the CA's PEM."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = make_cert("podman-sd test CA", ca_key, None, ca=True)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = make_cert(
        "127.0.0.1",
        server_key,
        (ca, ca_key),
        ca=False,
        sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    token_ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token_ca = make_cert("token CA", token_ca_key, None, ca=True)
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing = make_cert("token signer", signing_key, (token_ca, token_ca_key), ca=False)

    host.write_file("/srv/tls/ca.crt", cert_pem(ca))
    host.write_file("/srv/tls/server.crt", cert_pem(server))
    host.write_file("/srv/tls/server.key", key_pem(server_key), mode=0o600)
    host.write_file("/srv/token/root.crt", cert_pem(token_ca))
    host.write_file("/srv/token/signing.crt", cert_pem(signing))
    host.write_file("/srv/token/signing.key", key_pem(signing_key), mode=0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))
    host.write_file("/srv/registry-basic/htpasswd", f"{USER}:{hashed}\n")
    host.write_file(
        "/srv/registry-basic.yml",
        registry_config(
            BASIC_PORT,
            "registry-basic",
            "htpasswd:\n  realm: basic-realm\n  path: /srv/registry-basic/htpasswd\n",
        ),
    )
    host.write_file(
        "/srv/registry-token.yml",
        registry_config(
            TOKEN_PORT,
            "registry-token",
            f"token:\n  realm: https://{ISSUER}/token\n  service: test-registry\n"
            "  issuer: test-issuer\n  rootcertbundle: /srv/token/root.crt\n",
        ),
    )
    users = f"{TOKEN_USER!r}: {TOKEN_PASSWORD!r}"
    host.write_file("/srv/token/issuer.py", ISSUER_SCRIPT % {"users": users, "port": ISSUER_PORT})
    for unit, argv in (
        ("registry-basic", ["docker-registry", "serve", "/srv/registry-basic.yml"]),
        ("registry-token", ["docker-registry", "serve", "/srv/registry-token.yml"]),
        ("token-issuer", ["/usr/bin/python3", "/srv/token/issuer.py"]),
    ):
        host.run("systemd-run", f"--unit={unit}", *argv)
    for port in (BASIC_PORT, TOKEN_PORT, ISSUER_PORT):
        wait_for_port(host, port)
    # podman-sd's own configuration: the CA per host:port, and credentials.
    for hostport in (BASIC, TOKEN, ISSUER):
        host.write_file(f"/etc/podman-sd/certs.d/{hostport}/ca.crt", cert_pem(ca))
    host.write_file("/srv/tls/certs/ca.crt", cert_pem(ca))
    host.write_file(
        "/etc/podman-sd/auth.json",
        json.dumps(
            {
                "auths": {
                    BASIC: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()},
                    TOKEN: {
                        "auth": base64.b64encode(f"{TOKEN_USER}:{TOKEN_PASSWORD}".encode()).decode()
                    },
                }
            }
        ),
        mode=0o600,
    )
    return cert_pem(ca)


def push(host: TestHost, source: str, dest: str, creds: str, *extra: str) -> None:
    host.run(
        "skopeo", "copy", "--quiet", *extra, "--dest-cert-dir=/srv/tls/certs",
        f"--dest-creds={creds}", source, f"docker://{dest}",
    )  # fmt: skip


MULTI_INDEX = r"""
import hashlib, json, os, sys
layout, amd_tag, other_tag, other_arch, name = sys.argv[1:]
index = json.load(open(f"{layout}/index.json"))
by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
entries = []
for tag, arch in ((amd_tag, os.environ["HOST_ARCH"]), (other_tag, other_arch)):
    entry = dict(by_tag[tag]); entry.pop("annotations", None)
    entry["platform"] = {"os": "linux", "architecture": arch}
    entries.append(entry)
blob = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": entries}).encode()
digest = hashlib.sha256(blob).hexdigest()
open(f"{layout}/blobs/sha256/{digest}", "wb").write(blob)
index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
    "digest": f"sha256:{digest}", "size": len(blob),
    "annotations": {"org.opencontainers.image.ref.name": name}})
json.dump(index, open(f"{layout}/index.json", "w"))
"""
