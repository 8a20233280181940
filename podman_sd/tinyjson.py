"""A JSON writer for plain data that imports nothing heavy.

The resident supervisor writes the pod's state file with it: the json
package would pull in ``re`` and cost the pod memory for the whole of its
life. Strings are escaped by the C function the json package itself uses.
"""

from __future__ import annotations

from _json import encode_basestring_ascii


def dumps(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return str(encode_basestring_ascii(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
