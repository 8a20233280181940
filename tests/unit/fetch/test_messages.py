"""Connection errors from requests/urllib3 become one readable line."""

from __future__ import annotations

from podman_sd.fetch.registry import _short


def test_connection_error_loses_the_object_repr() -> None:
    err = Exception(
        "HTTPSConnectionPool(host='docker.io', port=443): Max retries exceeded with url: /v2/ "
        "(Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at "
        "0x7f49266e33d0>: Failed to establish a new connection: [Errno -3] Temporary failure "
        "in name resolution'))"
    )
    assert _short(err) == (
        "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution"
    )


def test_plain_messages_stay() -> None:
    assert _short(Exception("connection reset\n by peer")) == "connection reset by peer"
