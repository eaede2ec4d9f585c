"""JavaScript number semantics the vendor codecs rely on, so that our fields equal theirs value for value."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext


def js_number(value: float) -> int | float:
    """The number as it comes out of a JS codec after a JSON round trip: integral values are ints (3, not 3.0)."""
    if isinstance(value, int):
        return value
    if value.is_integer() and abs(value) < 1e21:
        return int(value)  # also turns -0.0 into 0, as JSON.stringify(-0) gives "0"
    return value


def to_fixed(value: float, digits: int) -> str:
    """`Number.prototype.toFixed`: rounds the exact binary value half away from zero (Python's format rounds
    half to even, e.g. 0.125 → "0.12" where JS gives "0.13")."""
    if value == 0:
        value = 0.0  # (-0).toFixed(2) is "0.00"
    if abs(value) >= 1e21:
        return repr(value)  # JS falls back to ToString; our payloads never get there
    with localcontext() as context:
        context.prec = 60  # room for 21 integer digits plus the decimals, so quantize never overflows
        return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def js_string(value: float) -> str:
    """`String(number)` for the numbers our payloads give: integral values without ".0", others as repr (which is
    the shortest round-trip form, as in JS, for magnitudes between 1e-7 and 1e21)."""
    number = js_number(value)
    return str(number) if isinstance(number, int) else repr(number)
