"""Typed reading of composed YAML with diagnostics instead of exceptions.

A ``Fields`` wraps one mapping of the manifest. Each getter checks the type
of one key, records a diagnostic and returns None when it is wrong, so the
parser goes on and reports every error of the file. ``finish()`` then
reports the keys nobody read: ignored, unsupported or unknown.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping

from podman_sd.manifest.diagnostics import Diagnostic, Severity, show
from podman_sd.manifest.quantity import (
    EXAMPLES,
    Quantity,
    QuantityError,
    parse_quantity,
    quantity_from_number,
)
from podman_sd.manifest.yamlnode import Kind, Node

# The typing module costs milliseconds at every boot (the generator imports
# this); mypy reads any TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    E = TypeVar("E", bound=enum.Enum)

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

SINGLE_HOST = "not supported on a single host"


class Context:
    """Collects the diagnostics of one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        # field path -> (line, column) of every value read, for host_checks().
        self.positions: dict[str, tuple[int, int]] = {}

    def error(self, node: Node, path: str, message: str) -> None:
        self.diagnostics.append(
            Diagnostic(self.file, node.line, node.column, _printable(path), message)
        )

    def warn(self, node: Node, path: str, message: str) -> None:
        self.diagnostics.append(
            Diagnostic(
                self.file, node.line, node.column, _printable(path), message, Severity.WARNING
            )
        )

    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.diagnostics)


def _printable(path: str) -> str:
    """Field paths hold keys as written; a key with a newline or a control
    character must not break the one-line message."""
    if path.isprintable():
        return path
    return show(path, 1000)[1:-1]  # JSON escapes, without the quotes


def _what(node: Node) -> str:
    if node.kind is not Kind.SCALAR:
        return str(node.kind.value)
    value = node.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def type_error(ctx: Context, node: Node, path: str, expected: str) -> None:
    message = f"{node.describe()} is {_what(node)}, expected {expected}"
    if expected == "a string" and node.kind is Kind.SCALAR:
        # YAML 1.1 reads 8080, yes, on, 1.10 and 0755 as non-strings.
        message += f" (quote it: {show(node.text)})"
    elif node.kind is not Kind.SCALAR:
        message = f"is {_what(node)}, expected {expected}"
    ctx.error(node, path, message)


def as_str(ctx: Context, node: Node, path: str) -> str | None:
    if node.kind is Kind.SCALAR and isinstance(node.value, str):
        return node.value
    type_error(ctx, node, path, "a string")
    return None


def as_int(ctx: Context, node: Node, path: str, low: int, high: int) -> int | None:
    value = node.value
    if node.kind is not Kind.SCALAR or isinstance(value, bool) or not isinstance(value, int):
        type_error(ctx, node, path, "an integer")
        return None
    if not low <= value <= high:
        # "at least 0" alone would be wrong for a value above the maximum.
        limit = f"at least {low}" if value < low and high >= INT32_MAX else f"from {low} to {high}"
        ctx.error(node, path, f"{value} is out of range ({limit})")
        return None
    return value


def as_bool(ctx: Context, node: Node, path: str) -> bool | None:
    if node.kind is Kind.SCALAR and isinstance(node.value, bool):
        return node.value
    type_error(ctx, node, path, "true or false")
    return None


def as_enum(ctx: Context, node: Node, path: str, kind: type[E]) -> E | None:
    text = as_str(ctx, node, path)
    if text is None:
        return None
    for member in kind:
        if member.value == text and text:
            return member
    accepted = ", ".join(m.value for m in kind if m.value)
    ctx.error(node, path, f"{show(text)} is not one of: {accepted}")
    return None


def items(ctx: Context, node: Node, path: str) -> Iterator[tuple[Node, str]]:
    """The elements of a list, each with its path; a type error otherwise."""
    if node.kind is not Kind.SEQ:
        type_error(ctx, node, path, "a list")
        return
    for i, element in enumerate(node.value):
        yield element, f"{path}[{i}]"


def parse_quantity_node(ctx: Context, node: Node, path: str) -> Quantity | None:
    """A quantity from a string or a number; None (and an error) otherwise."""
    value = node.value
    try:
        if node.kind is Kind.SCALAR and isinstance(value, str):
            q = parse_quantity(value)
        elif (
            node.kind is Kind.SCALAR
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            q = quantity_from_number(value)
        else:
            ctx.error(node, path, f"{node.describe()} is not a quantity ({EXAMPLES})")
            return None
    except QuantityError as e:
        ctx.error(node, path, f"{show(node.text)} {e} ({EXAMPLES})")
        return None
    if q.value < 0:
        ctx.error(node, path, f"{show(node.text)} is negative")
        return None
    return q


def suggest(word: str, choices: set[str] | frozenset[str]) -> str:
    import difflib  # only on the error path: keeps the generator's start fast

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Fields:
    """One mapping of the manifest, read key by key."""

    def __init__(self, ctx: Context, node: Node, path: str) -> None:
        self.ctx = ctx
        self.node = node
        self.path = path
        self.read: set[str] = set()

    @classmethod
    def of(cls, ctx: Context, node: Node, path: str) -> Fields | None:
        if node.kind is not Kind.MAP:
            type_error(ctx, node, path, "a mapping")
            return None
        return cls(ctx, node, path)

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def unique(self, key: str, value: str | None, seen: set[str], rule: str) -> None:
        """Report VALUE (read from KEY) if SEEN has it already; then remember it."""
        if value is None:
            return
        if value in seen:
            self.ctx.error(
                self.get(key) or self.node, self.sub(key), f"{show(value)} is a duplicate: {rule}"
            )
        seen.add(value)

    def get(self, key: str, required: bool = False) -> Node | None:
        """The value of ``key``; None when absent or null (Kubernetes treats
        an explicit null like an absent field)."""
        self.read.add(key)
        pair = self.node.value.get(key)
        if pair is None or (pair[1].kind is Kind.SCALAR and pair[1].value is None):
            if required:
                self.ctx.error(self.node, self.sub(key), "required field is missing")
            return None
        node: Node = pair[1]
        self.ctx.positions[self.sub(key)] = (node.line, node.column)
        return node

    def text(
        self,
        key: str,
        required: bool = False,
        check: Callable[[str], str | None] | None = None,
    ) -> str | None:
        node = self.get(key, required)
        if node is None:
            return None
        value = as_str(self.ctx, node, self.sub(key))
        if value is None:
            return None
        if required and not value:
            self.ctx.error(node, self.sub(key), '"" is empty, a value is required')
            return None
        if check is not None:
            problem = check(value)
            if problem:
                self.ctx.error(node, self.sub(key), f"{show(value)} {problem}")
                return None
        return value

    def integer(self, key: str, low: int = 0, high: int = INT32_MAX) -> int | None:
        node = self.get(key)
        return None if node is None else as_int(self.ctx, node, self.sub(key), low, high)

    def flag(self, key: str) -> bool | None:
        node = self.get(key)
        return None if node is None else as_bool(self.ctx, node, self.sub(key))

    def choice(self, key: str, kind: type[E]) -> E | None:
        node = self.get(key)
        return None if node is None else as_enum(self.ctx, node, self.sub(key), kind)

    def fields(self, key: str, required: bool = False) -> Fields | None:
        node = self.get(key, required)
        return None if node is None else Fields.of(self.ctx, node, self.sub(key))

    def seq(self, key: str, required: bool = False) -> Iterator[tuple[Node, str]]:
        node = self.get(key, required)
        if node is not None:
            yield from items(self.ctx, node, self.sub(key))

    def strs(self, key: str) -> tuple[str, ...] | None:
        """A list of strings; None when absent."""
        node = self.get(key)
        if node is None:
            return None
        result: list[str] = []
        for element, path in items(self.ctx, node, self.sub(key)):
            value = as_str(self.ctx, element, path)
            if value is not None:
                result.append(value)
        return tuple(result)

    def key_node(self, key: str) -> Node:
        return self.node.value[key][0]  # type: ignore[no-any-return]

    def finish(
        self,
        unsupported: frozenset[str] = frozenset(),
        ignored: Mapping[str, str] | None = None,
        hints: Mapping[str, str] | None = None,
    ) -> None:
        """Report the keys that were not read.

        ``ignored`` keys get a warning (with the reason given); ``unsupported``
        ones are real Kubernetes fields podman-sd does not implement; anything
        else is unknown to Kubernetes too, most likely a typo. Call it after
        every supported key was read with a getter.
        """
        ignored = ignored or {}
        for key, (key_node, value) in self.node.value.items():
            if key in self.read:
                continue
            path = self.sub(key)
            if value.kind is Kind.SCALAR and value.value is None:
                continue  # null: Kubernetes treats it as unset
            if key in ignored and value.kind in (Kind.SEQ, Kind.MAP) and not value.value:
                continue  # [] or {}: asks for nothing, so nothing is ignored
            if key in ignored:
                self.ctx.warn(key_node, path, f"ignored: {ignored[key]}")
            elif key in unsupported:
                hint = (hints or {}).get(key)
                self.ctx.error(key_node, path, SINGLE_HOST + (f" ({hint})" if hint else ""))
            else:
                known = self.read | unsupported | frozenset(ignored)
                self.ctx.error(key_node, path, f"unknown field {show(key)}{suggest(key, known)}")
