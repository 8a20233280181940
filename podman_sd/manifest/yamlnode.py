"""Safe, bounded YAML reading that keeps the line and column of every value.

PyYAML's composer hands out node trees without limits: aliases can expand
exponentially ("billion laughs"), libyaml slows down quadratically on deep
nesting, and duplicate keys silently overwrite each other. So the events of
the C parser (libyaml, fast) are composed here instead, with a bound on
depth and on the size of the tree after alias expansion, duplicate keys as
errors, and scalars resolved with YAML 1.1 rules (the ones Kubernetes' own
YAML reader applies: ``yes`` and ``on`` are booleans, ``0755`` is octal).
"""

from __future__ import annotations

import enum

import yaml

from podman_sd.manifest.diagnostics import Diagnostic, show

# The typing module costs milliseconds at every boot; mypy reads any
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - python3-yaml always ships libyaml
    _Loader = yaml.SafeLoader

MAX_BYTES = 1 << 20  # 1 MiB: a pod manifest is a few KiB
MAX_DEPTH = 64  # a Pod is at most ~10 levels deep
MAX_NODES = 100_000  # nodes after alias expansion; a large pod has ~1000
_MAX_NUMBER = 64  # characters of an int or float scalar (int(1e6 digits) is slow)

_P = "tag:yaml.org,2002:"


class Kind(enum.Enum):
    MAP = "a mapping"
    SEQ = "a list"
    SCALAR = "a scalar"


class Node:
    """A composed value with its position (1-based line and column).

    ``value`` is ``dict[str, tuple[Node, Node]]`` (key text -> key node, value
    node) for a mapping, ``list[Node]`` for a list and None, bool, int, float
    or str for a scalar; ``text`` is a scalar as written, for messages.
    """

    __slots__ = ("column", "kind", "line", "size", "text", "value")

    def __init__(self, kind: Kind, line: int, column: int, value: Any, text: str = "") -> None:
        self.kind = kind
        self.line = line
        self.column = column
        self.value = value
        self.text = text
        self.size = 1

    def describe(self) -> str:
        """The value as a message quotes it."""
        if self.kind is Kind.SCALAR:
            return show(self.value)
        return str(self.kind.value)

    def plain(self, depth: int = 0) -> Any:
        """The value as plain Python data (for tests and schema checks)."""
        if self.kind is Kind.MAP:
            return {k: v.plain(depth + 1) for k, (_, v) in self.value.items()}
        if self.kind is Kind.SEQ:
            return [v.plain(depth + 1) for v in self.value]
        return self.value


class _Abort(Exception):
    """Stops composing after an error that makes the rest meaningless."""


class _Composer:
    def __init__(self, data: bytes, file: str) -> None:
        self.data = data
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.anchors: dict[str, Node] = {}
        self.merge_keys: set[int] = set()
        self.loader = _Loader(data)
        self.resolvers = self.loader.yaml_implicit_resolvers

    def error(self, line: int, column: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.file, line, column, "", message))

    def compose(self) -> Node | None:
        try:
            return self._compose()
        except _Abort:
            return None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = e.problem or e.context or "invalid YAML"
            context = f" {e.context}" if e.context and e.problem else ""
            self.error(line, column, f"invalid YAML:{context} {problem}".replace("  ", " "))
            return None
        except yaml.reader.ReaderError as e:
            line, column = self._position(e.position)
            self.error(line, column, f"invalid YAML: {e.reason}")
            return None
        except (yaml.YAMLError, UnicodeError, ValueError) as e:
            # libyaml reports some encoding problems without a mark.
            self.error(1, 1, f"invalid YAML: {e}")
            return None
        finally:
            self.loader.dispose()

    def _position(self, offset: int) -> tuple[int, int]:
        head = self.data[: max(offset, 0)]
        return head.count(b"\n") + 1, offset - (head.rfind(b"\n") + 1) + 1

    def _compose(self) -> Node | None:
        get = self.loader.get_event
        get()  # StreamStart
        event = get()
        if isinstance(event, yaml.StreamEndEvent):
            return None
        root = self._document()
        event = get()  # DocumentEnd
        event = get()
        if isinstance(event, yaml.DocumentStartEvent):
            line, column = _position(event)
            self.error(line, column, "a second YAML document: a manifest holds exactly one pod")
        return root

    def _document(self) -> Node:
        """Compose one document iteratively (no recursion, bounded depth)."""
        get = self.loader.get_event
        # Each frame: (node, pending key node or None, merge sources).
        stack: list[tuple[Node, list[Node | None], list[Node]]] = []
        result: Node | None = None
        scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
        mapping_start, sequence_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
        while result is None:
            event = get()
            cls = type(event)
            mark = event.start_mark
            line, column = mark.line + 1, mark.column + 1
            node: Node | None = None
            if cls is scalar_event:
                node = self._scalar(event, line, column)
                if event.anchor:
                    self.anchors[event.anchor] = node
            elif cls is mapping_start or cls is sequence_start:
                is_map = cls is mapping_start
                if len(stack) >= MAX_DEPTH:
                    self.error(line, column, f"nested deeper than {MAX_DEPTH} levels")
                    raise _Abort
                if event.tag not in (None, "!", _P + ("map" if is_map else "seq")):
                    self.error(line, column, f"unsupported YAML tag {show(event.tag)}")
                new = Node(Kind.MAP if is_map else Kind.SEQ, line, column, {} if is_map else [])
                new.text = event.anchor or ""  # remembered until the end event
                stack.append((new, [None], []))
                continue
            elif cls is alias_event:
                node = self.anchors.get(event.anchor or "")
                if node is None:
                    self.error(line, column, f"alias *{event.anchor} names no complete anchor")
                    raise _Abort
            else:  # MappingEnd / SequenceEnd
                node, _, merges = stack.pop()
                if merges:
                    self._merge(node, merges)
                if node.text:
                    self.anchors[node.text] = node
                    node.text = ""
            if not stack:
                result = node
            else:
                self._attach(stack[-1], node)
        return result

    def _attach(self, frame: tuple[Node, list[Node | None], list[Node]], node: Node) -> None:
        parent, pending, merges = frame
        parent.size += node.size
        if parent.size > MAX_NODES:
            self.error(
                node.line,
                node.column,
                f"more than {MAX_NODES} values after expanding aliases",
            )
            raise _Abort
        if parent.kind is Kind.SEQ:
            parent.value.append(node)
            return
        key = pending[0]
        if key is None:
            pending[0] = node
            return
        pending[0] = None
        if key.kind is not Kind.SCALAR:
            self.error(
                key.line, key.column, f"a mapping key must be a string, not {key.describe()}"
            )
            return
        if id(key) in self.merge_keys:
            if node.kind is Kind.MAP:
                merges.append(node)
            elif node.kind is Kind.SEQ and all(n.kind is Kind.MAP for n in node.value):
                merges.extend(node.value)
            else:
                self.error(node.line, node.column, "a merge key (<<) needs a mapping")
            return
        previous = parent.value.get(key.text)
        if previous is not None:
            self.error(
                key.line,
                key.column,
                f"duplicate key {show(key.text)} (first at line {previous[0].line})",
            )
            return
        parent.value[key.text] = (key, node)

    def _merge(self, node: Node, merges: list[Node]) -> None:
        # YAML merge keys: explicit keys win, then earlier merged mappings.
        for source in merges:
            for k, pair in source.value.items():
                node.value.setdefault(k, pair)

    def _scalar(self, event: Any, line: int, column: int) -> Node:
        text: str = event.value
        tag: str | None = event.tag
        if tag is None or tag == "!":
            # Plain scalars whose first character starts no implicit type
            # (most of a manifest: names, images, paths) are strings at once.
            if tag is None and event.implicit[0] and (not text or text[0] in self.resolvers):
                tag = self.loader.resolve(yaml.ScalarNode, text, (True, False))
            else:
                return Node(Kind.SCALAR, line, column, text, text)
        node = Node(Kind.SCALAR, line, column, text, text)
        if tag in (_P + "str", _P + "timestamp", _P + "value"):
            # Kubernetes' YAML reader keeps timestamps as strings.
            return node
        if tag == _P + "merge":
            # A plain << (a YAML merge key); a quoted "<<" stays an ordinary key.
            self.merge_keys.add(id(node))
            return node
        if tag == _P + "null":
            node.value = None
        elif tag == _P + "bool":
            node.value = text.lower() in ("yes", "true", "on", "y")
        elif tag in (_P + "int", _P + "float"):
            if len(text) > _MAX_NUMBER:
                self.error(line, column, f"{show(text)} is too long for a number")
                return node
            scalar = yaml.ScalarNode(tag, text)
            try:
                if tag == _P + "int":
                    node.value = self.loader.construct_yaml_int(scalar)
                else:
                    node.value = self.loader.construct_yaml_float(scalar)
            except ValueError:
                self.error(line, column, f"{show(text)} is not a number")
        else:
            self.error(line, column, f"unsupported YAML tag {show(tag)}")
        return node


def _position(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1


def compose(data: bytes, file: str) -> tuple[Node | None, list[Diagnostic]]:
    """Compose the single document of ``data``. Returns the root (None if the
    stream is empty or broken) and the diagnostics found while composing."""
    if len(data) > MAX_BYTES:
        return None, [Diagnostic(file, 1, 1, "", f"larger than {MAX_BYTES} bytes")]
    composer = _Composer(data, file)
    root = composer.compose()
    return root, composer.diagnostics
