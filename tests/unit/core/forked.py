"""Running a test's body in a forked child (namespaces, sandboxes)."""

from __future__ import annotations

import os
from collections.abc import Callable


def output_of_child(body: Callable[[int], bytes]) -> bytes:
    """Run BODY in a forked child and return the bytes it returns. BODY gets
    the write end of the pipe they travel on (to keep it open in a sandbox);
    it reports its own expected errors, anything else ends the child."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.write(write_end, body(write_end))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return data
