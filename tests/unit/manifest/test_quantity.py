from __future__ import annotations

from fractions import Fraction

import pytest

from podman_sd.manifest.quantity import QuantityError, parse_quantity, quantity_from_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("1", Fraction(1)),
        ("0", Fraction(0)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1Ki", Fraction(1024)),
        ("2Gi", Fraction(2 * 2**30)),
        ("1Ti", Fraction(2**40)),
        ("1Pi", Fraction(2**50)),
        ("1Ei", Fraction(2**60)),
        ("1G", Fraction(10**9)),
        ("1k", Fraction(1000)),
        ("1M", Fraction(10**6)),
        ("1T", Fraction(10**12)),
        ("1P", Fraction(10**15)),
        ("1E", Fraction(10**18)),
        ("100n", Fraction(1, 10**7)),
        ("5u", Fraction(5, 10**6)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1e-3", Fraction(1, 1000)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("+1", Fraction(1)),
        ("1.5Gi", Fraction(1610612736)),
    ],
)
def test_valid(text: str, value: Fraction) -> None:
    q = parse_quantity(text)
    assert q.value == value
    assert str(q) == text


@pytest.mark.parametrize(
    "text",
    ["", "12 GB", "1Gb", "1gi", "Mi", "1.2.3", "1m5", "abc", "1e", "1K", "--1", "1e99", "9" * 70],
)
def test_invalid(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_rounding() -> None:
    assert parse_quantity("0.1").milli() == 100
    assert parse_quantity("1n").milli() == 1  # the API server rounds cpu up to 1m
    assert parse_quantity("1.5").ceil() == 2
    assert parse_quantity("1Mi").ceil() == 1048576


def test_numbers() -> None:
    assert quantity_from_number(0.5).value == Fraction(1, 2)
    assert quantity_from_number(1024).value == 1024
    assert quantity_from_number(1e20).value == 10**20
    with pytest.raises(QuantityError):
        quantity_from_number(float("inf"))
