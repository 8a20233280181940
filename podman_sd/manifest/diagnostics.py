"""Diagnostics: one finding about a manifest, located at a file, line and column.

The text form follows the compilers' convention that editors and CI logs
already understand::

    web.yaml:14:9: spec.containers[1].resources.limits.memory: "12 GB" is not a quantity (...)

Warnings carry ``warning:`` after the location so that a grep for the error
form never matches them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# How much of a bad value is quoted back: enough to recognise it, never a
# whole line of binary garbage.
_MAX_SHOWN = 60


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One error or warning. ``line`` and ``column`` are 1-based; 0 means the
    finding concerns the file as a whole (it could not be read)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        level = "warning: " if self.severity is Severity.WARNING else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}: {level}{field}{self.message}"

    def to_json(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "severity": self.severity.value,
        }


def show(value: object, limit: int = _MAX_SHOWN) -> str:
    """Render a bad value for a message: strings JSON-quoted (so control
    characters and binary stay on one printable line), long ones cut.
    Printable non-ASCII text is shown as written ("ünï"); what a terminal
    would not show as itself (control, format and bidi characters, line and
    paragraph separators, lone surrogates) is escaped as \\uXXXX."""
    if isinstance(value, str):
        import json  # only when there is something to report

        text = json.dumps(value[:limit], ensure_ascii=False)
        if not text.isprintable():
            text = "".join(c if c.isprintable() else _escape(c) for c in text)
        return text[:-1] + '..."' if len(value) > limit else text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)[:_MAX_SHOWN]


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    # JSON's form for a character beyond the BMP: a UTF-16 surrogate pair.
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def one_line(diagnostics: list[Diagnostic]) -> str:
    """The one-line summary used as the text of a ManifestError."""
    errors = [d for d in diagnostics if d.severity is Severity.ERROR] or diagnostics
    if not errors:
        return "invalid manifest"
    text = str(errors[0])
    more = len(errors) - 1
    if more:
        text += f" (and {more} more error{'s' if more > 1 else ''})"
    return text
