"""Kubernetes resource quantities (``500m``, ``1.5``, ``128Mi``, ``1e3``, ``2G``).

The grammar is the API server's (k8s.io/apimachinery resource.Quantity)::

    quantity  ::= sign? number suffix
    number    ::= digits | digits "." digits? | "." digits
    suffix    ::= binarySI | decimalSI | ("e" | "E") sign? digits
    binarySI  ::= Ki | Mi | Gi | Ti | Pi | Ei
    decimalSI ::= n | u | m | "" | k | M | G | T | P | E

Values are kept exact (``Fraction``) so that ``0.1`` CPU is exactly 100m and
``1.5Gi`` is exactly 1610612736 bytes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

_RE = re.compile(
    r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<bin>[KMGTPE]i)|(?P<exp>[eE][+-]?[0-9]+)|(?P<dec>[numkMGTPE]?))"
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}

# The API server stores quantities as int64 milli-units at most; anything
# beyond these bounds is a typo, and bounding them keeps Fraction arithmetic
# cheap on hostile input ("1e999999999").
_MAX_TEXT = 64
_MAX_EXPONENT = 30

EXAMPLES = "examples: 512Mi, 2G, 500m, 1.5"


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity; str() says why."""


@dataclass(frozen=True, order=False)
class Quantity:
    """A parsed quantity: ``text`` as written, ``value`` in base units
    (cores for cpu, bytes for memory and storage)."""

    text: str
    value: Fraction

    def __str__(self) -> str:
        return self.text

    def ceil(self) -> int:
        """Whole base units, rounded up (bytes, or cores)."""
        return math.ceil(self.value)

    def milli(self) -> int:
        """Milli-units rounded up, the way the API server rounds cpu."""
        return math.ceil(self.value * 1000)


def parse_quantity(text: str) -> Quantity:
    """Parse ``text``; raise QuantityError with the reason otherwise."""
    if len(text) > _MAX_TEXT:
        raise QuantityError("is too long to be a quantity")
    m = _RE.fullmatch(text)
    if m is None:
        raise QuantityError("is not a quantity")
    number = Fraction(m["num"])
    if m["bin"]:
        scale = Fraction(_BINARY[m["bin"]])
    elif m["exp"]:
        exponent = int(m["exp"][1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError("has an exponent out of range")
        scale = Fraction(10) ** exponent
    else:
        scale = _DECIMAL[m["dec"] or ""]
    return Quantity(text, number * scale)


def quantity_from_number(value: int | float) -> Quantity:
    """A quantity written as a YAML number (``cpu: 0.5``, ``memory: 1024``)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError("is not a finite number")
        text = repr(value)
    else:
        text = str(value)
    return parse_quantity(text)
