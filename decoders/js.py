"""JavaScript number semantics the vendor codecs rely on, so that our fields equal theirs value for value."""

from __future__ import annotations


def js_number(value: float) -> int | float:
    """The number as it comes out of a JS codec after a JSON round trip: integral values are ints (3, not 3.0)."""
    if isinstance(value, int):
        return value
    if value.is_integer() and abs(value) < 1e21:
        return int(value)  # also turns -0.0 into 0, as JSON.stringify(-0) gives "0"
    return value


def to_fixed(value: float, digits: int) -> str:
    """`Number.prototype.toFixed`: rounds the exact binary value half away from zero (Python's format rounds
    half to even, e.g. 0.125 → "0.12" where JS gives "0.13").

    Exact in integers: the double is numerator/2**k, so n = round-half-up(|value| · 10**digits) needs no decimals.
    """
    if value != value or abs(value) >= 1e21:
        return repr(value) if value == value else "NaN"  # JS falls back to ToString; our payloads never get there
    numerator, denominator = value.as_integer_ratio()
    negative = numerator < 0
    if negative:
        numerator = -numerator
    scaled = numerator * _POWERS_OF_TEN[digits]
    units = (2 * scaled + denominator) // (2 * denominator)
    if not digits:
        text = str(units)
    else:
        text = str(units).rjust(digits + 1, "0")
        text = text[:-digits] + "." + text[-digits:]
    return "-" + text if negative else text  # (-0).toFixed(2) is "0.00": -0.0 has numerator 0, not negative


_POWERS_OF_TEN = tuple(10**digits for digits in range(101))


def js_string(value: float) -> str:
    """`String(number)` for the numbers our payloads give: integral values without ".0", others as repr (which is
    the shortest round-trip form, as in JS, for magnitudes between 1e-7 and 1e21)."""
    number = js_number(value)
    return str(number) if isinstance(number, int) else repr(number)


def fixed_from_integer(units: int, shift: int, digits: int) -> str:
    """`(units / 10**shift).toFixed(digits)` for shift <= digits, without floats: the double nearest to
    units/10**shift rounds back to that decimal, as long as its error (half an ulp) stays below half a unit of the
    last digit, which the caller checks (`fixed_from_integer_exact`)."""
    scaled = units * _POWERS_OF_TEN[digits - shift] if digits != shift else units
    text = str(-scaled if scaled < 0 else scaled)
    if digits:
        text = text.rjust(digits + 1, "0")
        text = text[:-digits] + "." + text[-digits:]
    return "-" + text if scaled < 0 else text


def fixed_from_integer_exact(largest: float, shift: int, digits: int) -> bool:
    """Whether `fixed_from_integer` equals `to_fixed` for every value up to `largest` in magnitude."""
    return 0 <= shift <= digits <= 20 and largest * 2.0**-52 < 0.5 * 10.0**-digits
