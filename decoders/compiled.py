"""The decoder compiler: a layout of fields becomes one Python function of straight-line code, built once when the
spec loads. It decodes well-formed payloads several times faster than walking the layout objects; for anything
unusual (a payload cut short, an unknown channel, a wrong protocol version) it returns None and the layout's own
reader decodes the payload and names the error. tests/test_decoders_compiled.py holds both to the same output.
"""

from __future__ import annotations

import itertools
import math
import re
import struct
import sys
from collections.abc import Callable
from operator import is_, le
from typing import Any

import cbor2

from flurfunk.contracts import Quantity

from .decoded import Decoded, Measurement, Measurements
from .js import fixed_from_integer, fixed_from_integer_exact, js_number, js_string, to_fixed
from .layout import (
    AsBoolean,
    AsDescribed,
    AsFixed,
    AsLabel,
    AsNumber,
    AsSuffixed,
    ChannelLayout,
    Condition,
    Field,
    FixedLayout,
    FlaggedGroupsLayout,
    Hidden,
    Scale,
    Word,
    range_text,
)
from .protocols import (
    _ADEUNIS_TYPES,
    _CELSIUS,
    _V2_TELEMETRY,
    AdeunisTemp4Layout,
    CborLayout,
    SensecapFramesLayout,
    SensecapV2Layout,
    _adeunis_time,
    adeunis_status,
)

# (model id, fPort, payload) → the Decoded, or None: let the layout's reader decode it (and name what is wrong)
CompiledDecoder = Callable[[str, int, bytes], "Decoded | None"]


def compile_layout(layout: Any, warning: str | None = None) -> CompiledDecoder | None:
    """The compiled decoder of `layout` (`warning`: what the vendor signals with this variant, the first warning of
    every uplink it decodes), or None for layouts the compiler does not know (they keep their reader)."""
    if isinstance(layout, FixedLayout):
        return _Compiler(warning).fixed(layout)
    if isinstance(layout, FlaggedGroupsLayout):
        return _Compiler(warning).flagged(layout)
    if isinstance(layout, ChannelLayout):
        return _Compiler(warning).channels(layout)
    if isinstance(layout, CborLayout):
        return _cbor(layout, warning)
    if isinstance(layout, AdeunisTemp4Layout):
        return _adeunis_periodic(layout, warning)
    if isinstance(layout, SensecapFramesLayout):
        return _sensecap_telemetry(layout, warning)
    if isinstance(layout, SensecapV2Layout):
        return _sensecap_v2_periodic(layout, warning)
    return None


def compile_routes(uplinks: tuple[Any, ...]) -> dict[int, CompiledDecoder]:
    """Per application fPort, one function that picks the variant as DeviceModel._variant does (the first whose
    port and condition hold) and runs its compiled decoder; None from it: no variant holds, or the variant has no
    compiled decoder, or the decoder leaves the payload to the reader. Ports no variant takes have no route."""
    routes: dict[int, CompiledDecoder] = {}
    made: dict[tuple[int, ...], CompiledDecoder | None] = {}
    for port in range(1, 256):
        candidates: list[int] = []
        for index, uplink in enumerate(uplinks):
            if uplink.ports is None or port in uplink.ports:
                candidates.append(index)
                if uplink.when is None:
                    break  # the variants after it are never chosen on this port
        key = tuple(candidates)
        if key not in made:
            made[key] = _route([uplinks[index] for index in key]) if key else None
        route = made[key]
        if route is not None:
            routes[port] = route
    return routes


def _route(candidates: list[Any]) -> CompiledDecoder | None:
    if not any(uplink.fast for uplink in candidates):
        return None
    if len(candidates) == 1 and candidates[0].when is None:
        return candidates[0].fast  # no choice to make: the decoder itself
    compiler = _Compiler()
    compiler.emit(0, "def decode(model_id, f_port, payload):")
    compiler.emit(1, "n = len(payload)")
    for uplink in candidates:
        call = "None" if uplink.fast is None else f"{compiler.constant(uplink.fast)}(model_id, f_port, payload)"
        if uplink.when is None:
            compiler.emit(1, f"return {call}")
            break
        compiler.emit(1, f"if {_condition(uplink.when)}:")
        compiler.emit(2, f"return {call}")
    else:
        compiler.emit(1, "return None")
    return compiler.build("route")


def _condition(when: Condition) -> str:
    """Condition.holds as an expression of `payload` and its length `n`."""
    tests = []
    if when.length is not None:
        tests.append(f"n == {when.length}")
    if when.min_length is not None:
        tests.append(f"n >= {when.min_length}")
    if when.byte is not None:
        tests.append(f"n > {when.byte}")
        bits = f"payload[{when.byte}]" if when.mask == 0xFF else f"(payload[{when.byte}] & {when.mask})"
        if when.equals is not None:
            tests.append(f"{bits} == {when.equals}")
        if when.at_least is not None:
            tests.append(f"{bits} >= {when.at_least}")
    return " and ".join(tests) or "True"


def _put_repeated(target: dict[str, Any], key: str, shown: Any) -> None:
    # a second occurrence of the key turns the value into a list (Found.put does the same)
    if key in target:
        earlier = target[key]
        target[key] = [*earlier, shown] if isinstance(earlier, list) else [earlier, shown]
    else:
        target[key] = shown


def _finish(
    measured: dict[str, tuple[Any, float | None, float, float, str]], warnings: list[str]
) -> tuple[Measurement, ...]:
    """Measurements from (quantity, value or None when invalid, plausible low, high, range text) per output key, as
    DeviceModel.decode makes them: the first value of a quantity wins, implausible values stay with a warning."""
    measurements: list[Measurement] = []
    seen: set[Any] = set()
    for quantity, value, low, high, plausible in measured.values():
        if value is None:
            continue
        if quantity in seen:
            warnings.append(f"{quantity} given more than once; the first value is kept")
            continue
        seen.add(quantity)
        measurements.append(_new_tuple(Measurement, (quantity, value)))
        if value < low or value > high:
            warnings.append(f"{quantity} {value:g} is outside {plausible}")
    return tuple(measurements)


_new_tuple = tuple.__new__

# the decimals of a remainder below 10**shift, by shift: "07" for 7 at shift 2 (shared by every compiled decoder)
_REMAINDER_DIGITS = {shift: tuple(f"{remainder:0{shift}d}" for remainder in range(10**shift)) for shift in (1, 2, 3)}


def _decimal_shift(divisor: float) -> int | None:
    """k when the divisor is the integer 10**k, else None."""
    if not isinstance(divisor, int) or divisor < 1:
        return None
    shift = len(str(divisor)) - 1
    return shift if divisor == 10**shift else None


class _Compiler:
    """Writes the source of one decoder function; values it needs (labels, quantities, structs) are globals."""

    def __init__(self, warning: str | None = None) -> None:
        self.warning = warning or None  # as DeviceModel.decode: an empty warning is none
        self.lines: list[str] = []
        # (raw value's name, scale) → the local that holds the scaled value as a float, for the measurement to reuse
        self.floats: dict[tuple[str, Scale], str] = {}
        self.globals: dict[str, Any] = {
            "_D": Decoded,
            "_M": Measurement,
            "_MS": Measurements,
            "_new_tuple": tuple.__new__,
            "_to_fixed": to_fixed,
            "_fixed_from_integer": fixed_from_integer,
            "_js_string": js_string,
            "_put_repeated": _put_repeated,
            "_finish": _finish,
            "_from_bytes": int.from_bytes,
        }
        self.count = 0

    # --- plumbing ---------------------------------------------------------------------------------------------

    def constant(self, value: Any) -> str:
        name = f"_k{len(self.globals)}"
        self.globals[name] = value
        return name

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def begin(self, indent: int, fields: str = "{}") -> None:
        """The decoder's fields and warnings (the variant's own warning first, as DeviceModel.decode puts it)."""
        self.emit(indent, f"F = {fields}")
        self.emit(indent, "W = []" if self.warning is None else f"W = [{self.warning!r}]")

    def end(self, indent: int, measurements: str, empty_possible: bool = True) -> None:
        """Return the Decoded (warnings: "empty payload" last, as DeviceModel.decode adds it)."""
        if empty_possible:
            self.emit(indent, "if not n:")
            self.emit(indent + 1, 'W.append("empty payload")')
        warnings = "tuple(W)" if self.warning is not None else "(tuple(W) if W else ())"
        self.emit(indent, f"return _new_tuple(_D, (model_id, f_port, F, {measurements}, {warnings}))")

    def build(self, name: str) -> CompiledDecoder:
        source = "\n".join(self.lines) + "\n"
        namespace = dict(self.globals)
        exec(compile(source, f"<compiled decoder {name}>", "exec"), namespace)  # code we generated from a spec
        function = namespace["decode"]
        function.source = source  # for reading and debugging the compiler's output
        return function

    # --- words ------------------------------------------------------------------------------------------------

    def words(self, fields: tuple[Field, ...], base: str, indent: int) -> list[str]:
        """Lines that read every field's word at `base` + its offset; the names of the words, per field. The words
        `struct` reads go in one read per byte order (when they do not overlap), the others one by one."""
        distinct: dict[tuple[int, Word], str] = {}
        for spec in fields:
            distinct.setdefault((spec.offset, spec.word), "")
        pairs = sorted(distinct)
        for pair in pairs:
            distinct[pair] = self.name("w")
        orders = {word.value[1] for _, word in pairs if word.struct_code and word.size > 1}
        bytes_order = "little" if orders == {"little"} else "big"  # single bytes join the read of the others
        big = [p for p in pairs if p[1].struct_code and (p[1].value[1] if p[1].size > 1 else bytes_order) == "big"]
        little = [pair for pair in pairs if pair[1].struct_code and pair not in big]
        single = [pair for pair in pairs if not pair[1].struct_code]
        for order, group in ((">", big), ("<", little)):
            if len(group) > 1 and all(a[0] + a[1].size <= b[0] for a, b in itertools.pairwise(group)):
                layout = ""
                position = group[0][0]
                for offset, word in group:
                    layout += "x" * (offset - position) + (word.struct_code or "")[-1]
                    position = offset + word.size
                unpacker = self.constant(struct.Struct(order + layout).unpack_from)
                start = group[0][0]
                where = base if start == 0 else f"{base} + {start}"
                targets = ", ".join(distinct[pair] for pair in group)
                self.emit(indent, f"{targets}, = {unpacker}(payload, {where})")
            else:
                single += group
        for offset, word in sorted(single):
            where = base if offset == 0 else f"{base} + {offset}"
            if word.struct_code:
                unpacker = self.constant(struct.Struct(word.struct_code.rjust(2, ">")).unpack_from)
                self.emit(indent, f"{distinct[(offset, word)]}, = {unpacker}(payload, {where})")
            else:
                self.emit(
                    indent,
                    f"{distinct[(offset, word)]} = _from_bytes(payload[{where} : {where} + {word.size}], "
                    f"{word.value[1]!r}, signed={word.signed})",
                )
        return [distinct[(spec.offset, spec.word)] for spec in fields]

    def raw(self, spec: Field, word: str, indent: int) -> str:
        """The field's raw value (its bits of the word)."""
        if not spec.shift and spec.mask is None:
            return word
        raw = self.name("r")
        expression = f"{word} >> {spec.shift}" if spec.shift else word
        if spec.mask is not None:
            expression = f"({expression}) & {spec.mask}"
        self.emit(indent, f"{raw} = {expression}")
        return raw

    # --- values -----------------------------------------------------------------------------------------------

    @staticmethod
    def scaled(scale: Scale, word: Word, raw: str) -> tuple[str, bool]:
        """Scale.value as an expression (the same operations in the same order) and whether it is an int."""
        expression = raw
        if scale.negative_bias is not None:
            sign = 1 << (word.bits - 1)
            expression = f"({raw} - {scale.negative_bias} if {raw} >= {sign} else {raw})"
        expression = f"({expression} - {scale.subtract})" if scale.subtract else expression
        is_int = True
        if scale.divisor != 1:
            expression = f"({expression} / {scale.divisor!r})"
            is_int = False
        if scale.multiplier != 1:
            expression = f"({expression} * {scale.multiplier!r})"
            is_int = is_int and isinstance(scale.multiplier, int)
        return expression, is_int

    def number(self, spec: Field, raw: str, indent: int) -> str:
        """js_number of the field's scaled value, as an expression (the value goes into a local first)."""
        scale = spec.scale
        expression, is_int = self.scaled(scale, spec.word, raw)
        if is_int:
            return expression
        value = self.name("v")
        if scale.multiplier == 1 and isinstance(scale.divisor, int):
            # an integer over an integer: integral exactly when it divides (words are <= 32 bits, far from 2**53),
            # which an integer remainder tells more cheaply than float.is_integer()
            units, _ = self.scaled(Scale(subtract=scale.subtract, negative_bias=scale.negative_bias), spec.word, raw)
            if not units.isidentifier():
                integer = self.name("u")
                self.emit(indent, f"{integer} = {units}")
                units = integer
            self.emit(indent, f"{value} = {units} / {scale.divisor!r}")
            self.floats[(raw, scale)] = value
            return f"({value} if {units} % {scale.divisor!r} else {units} // {scale.divisor!r})"
        self.emit(indent, f"{value} = {expression}")
        self.floats[(raw, scale)] = value
        low, high = spec.scale.bounds(spec.word)
        if low > -1e21 and high < 1e21:  # js_number's limit cannot be reached by this word
            return f"(int({value}) if {value}.is_integer() else {value})"
        return f"(int({value}) if {value}.is_integer() and -1e21 < {value} < 1e21 else {value})"

    def shown(self, spec: Field, raw: str, indent: int) -> tuple[str | None, str | None]:
        """(expression of what the vendor shows, or None for nothing; a condition under which it shows nothing)."""
        shown = spec.shown
        if isinstance(shown, AsNumber):
            return self.number(spec, raw, indent), None
        if isinstance(shown, AsFixed):
            expression, _ = self.scaled(spec.scale, spec.word, raw)
            scale = spec.scale
            shift = _decimal_shift(scale.divisor)
            low, high = scale.bounds(spec.word)
            if (
                scale.multiplier == 1
                and shift is not None
                and fixed_from_integer_exact(max(-low, high), shift, shown.digits)
            ):
                # raw / 10**shift: decimal digits straight from the integer, no float rounding to undo
                integral = Scale(subtract=scale.subtract, negative_bias=scale.negative_bias)
                units, _ = self.scaled(integral, spec.word, raw)
                signed = integral.bounds(spec.word)[0] < 0
                return self.fixed_text(units, shift, shown.digits, signed, indent), None
            return f"_to_fixed({expression}, {shown.digits})", None
        if isinstance(shown, AsSuffixed):
            expression, _ = self.scaled(spec.scale, spec.word, raw)
            return f"_js_string({expression}) + {shown.suffix!r}", None
        if isinstance(shown, AsLabel):
            labels = self.constant(dict(reversed(shown.labels)))  # the first of equal keys wins, as in AsLabel
            label = self.name("s")
            self.emit(indent, f"{label} = {labels}.get({raw}, {shown.otherwise!r})")
            return label, (f"{label} is None" if shown.otherwise is None else None)
        if isinstance(shown, AsDescribed):
            # a copy of the object with its value set: cheaper than building the object anew
            number = self.number(spec, raw, indent)
            template = {"displayName": shown.display_name, "value": None}
            if shown.unit is not None:
                template["unit"] = shown.unit
            described = self.name("d")
            self.emit(indent, f"{described} = {self.constant(template)}.copy()")
            self.emit(indent, f'{described}["value"] = {number}')
            return described, None
        if isinstance(shown, AsBoolean):
            return f"{raw} != 0", None
        if isinstance(shown, Hidden):
            return None, None
        raise TypeError(f"no compiler for the presentation {shown!r}")

    def fixed_text(self, units: str, shift: int, digits: int, signed: bool, indent: int) -> str:
        """fixed_from_integer(units, shift, digits) as an f-string of the integer's quotient and its remainder's
        digits from a table (inline: a decoder makes several of these per payload, and %-formatting costs twice)."""
        if not digits:
            return f"str({units})"
        zeros = "0" * (digits - shift)
        if not shift:
            return f'f"{{{units}}}.{zeros}"'  # also right for a negative integer: "-5.00"
        if not units.isidentifier():
            integer = self.name("u")
            self.emit(indent, f"{integer} = {units}")
            units = integer
        if shift <= 3:
            table = self.constant(_REMAINDER_DIGITS[shift])
            text = f'f"{{{{{{0}} // {10**shift}}}}}.{{{{{table}[{{0}} % {10**shift}]}}}}{zeros}"'
        else:
            text = f"'%d.%0{shift}d{zeros}' % divmod({{0}}, {10**shift})"
        if not signed:
            return text.format(units)
        return f"({text.format(units)} if {units} >= 0 else '-' + {text.format('-' + units)})"

    def put(self, spec: Field, raw: str, target: str, key: str, indent: int) -> str | None:
        """Lines that put the field into `target` under `key` (an expression); the condition of an invalid raw
        value (no measurement then), or None."""
        invalid = None
        if spec.invalid:
            tests = []
            for index, case in enumerate(spec.invalid):
                test = f"{raw} == {case.equals}" if case.equals is not None else f"{raw} < {case.below}"
                if case.equals is None and case.below is None:
                    test = "False"
                keyword = "if" if index == 0 else "elif"
                self.emit(indent, f"{keyword} {test}:")
                self.assign(target, key, repr(case.text), spec.repeat_as_list, indent + 1)
                self.emit(indent + 1, f"W.append({f'{spec.name}: {case.text}'!r})")
                tests.append(test)
            invalid = " or ".join(f"({test})" for test in tests)
            self.emit(indent, "else:")
            indent += 1
        start = len(self.lines)
        expression, absent = self.shown(spec, raw, indent)
        if expression is not None:
            if absent is not None:
                self.emit(indent, f"if not ({absent}):")
                self.assign(target, key, expression, spec.repeat_as_list, indent + 1)
            else:
                self.assign(target, key, expression, spec.repeat_as_list, indent)
        if invalid is not None and len(self.lines) == start:
            self.emit(indent, "pass")
        return invalid

    def assign(self, target: str, key: str, expression: str, repeated: bool, indent: int) -> None:
        if repeated:
            self.emit(indent, f"_put_repeated({target}, {key}, {expression})")
        else:
            self.emit(indent, f"{target}[{key}] = {expression}")

    def measured_value(self, spec: Field, raw: str) -> str:
        measure = spec.measure
        assert measure is not None
        if measure.flag:
            return f"(1.0 if {raw} else 0.0)"
        scale = measure.scale or spec.scale
        known = self.floats.get((raw, scale))
        if known is not None:
            return known  # the field's own value, already a float
        expression, is_int = self.scaled(scale, spec.word, raw)
        return f"float({expression})" if is_int else expression

    def measurement(
        self, spec: Field, raw: str, invalid: str | None, indent: int, pending: list[tuple[Any, str]]
    ) -> None:
        """Straight-line measurement (quantities unique in the layout), warn if implausible; its (quantity, value)
        goes into `pending` (the caller adds the pending ones to the columns Q and V at once), or, under a
        condition, into Q and V here."""
        measure = spec.measure
        assert measure is not None
        if invalid is not None:
            self.flush(pending, indent)
            self.emit(indent, f"if not ({invalid}):")
            indent += 1
        value = self.measured_value(spec, raw)
        if not value.isidentifier():
            local = self.name("m")
            self.emit(indent, f"{local} = {value}")
            value = local
        if invalid is not None:
            self.emit(indent, f"Q += ({self.constant(measure.quantity)},)")
            self.emit(indent, f"V += ({value},)")
        else:
            pending.append((measure.quantity, value))
        bounds = []
        if measure.low is not None:
            bounds.append(f"{value} < {measure.low!r}")
        if measure.high is not None:
            bounds.append(f"{value} > {measure.high!r}")
        if bounds:
            before, after = f"{measure.quantity} ", f" is outside {range_text(measure)}"
            self.emit(indent, f"if {' or '.join(bounds)}:")
            self.emit(indent + 1, f'W.append({before!r} + format({value}, "g") + {after!r})')

    def flush(self, pending: list[tuple[Any, str]], indent: int) -> None:
        """Add the pending measurements to the columns Q and V (one concatenation each, not one per value)."""
        if pending:
            self.emit(indent, f"Q += {self.constant(tuple(quantity for quantity, _ in pending))}")
            self.emit(indent, f"V += ({', '.join(value for _, value in pending)},)")
            pending.clear()

    def columns(self, pending: list[tuple[Any, str]], indent: int) -> None:
        """M: the measurements of `pending`, none of them under a condition, as Measurements columns."""
        if not pending:
            self.emit(indent, "M = ()")
            return
        quantities = self.constant(tuple(quantity for quantity, _ in pending))
        self.emit(indent, f"M = _MS({quantities}, ({', '.join(value for _, value in pending)},))")

    # --- layouts ----------------------------------------------------------------------------------------------

    def fixed(self, layout: FixedLayout) -> CompiledDecoder | None:
        values = layout.values
        if len({spec.name for spec in values}) != len(values):
            return None  # a repeated name: the reader's bookkeeping decides which one is measured
        end = layout.length
        self.emit(0, "def decode(model_id, f_port, payload):")
        self.emit(1, "n = len(payload)")
        self.emit(1, f"if n < {end}:")
        self.emit(2, "return None")
        self.begin(1)
        raws = [self.raw(spec, word, 1) for spec, word in zip(values, self.words(values, "0", 1), strict=True)]
        invalid = [self.put(spec, raw, "F", repr(spec.name), 1) for spec, raw in zip(values, raws, strict=True)]
        for template in layout.templates:
            used = {name for _literal, name, _conversion in template.parts}
            scaled = ", ".join(
                f"{spec.name!r}: {self.scaled(spec.scale, spec.word, raw)[0]}"
                for spec, raw in zip(values, raws, strict=True)
                if spec.name in used
            )
            self.emit(1, f"F[{template.name!r}] = {self.constant(template)}.render({{{scaled}}})")
        for name, value in layout.constants:
            self.emit(1, f"F[{name!r}] = {self.constant(value)}")
        expected = end + len(layout.trailer)
        if values or layout.trailer:
            self.emit(1, f"if n > {expected}:")
            self.emit(2, f'W.append(f"{{n - {expected}}} byte(s) after offset {expected} ignored")')
        self.measurements(values, raws, invalid, 1)
        self.end(1, "M", empty_possible=end == 0)
        return self.build("fixed")

    def measurements(self, values: tuple[Field, ...], raws: list[str], invalid: list[str | None], indent: int) -> None:
        """Lines that leave the tuple of Measurements in M."""
        measured = [index for index, spec in enumerate(values) if spec.measure is not None]
        quantities = [values[index].measure.quantity for index in measured]  # type: ignore[union-attr]
        if len(set(quantities)) == len(quantities):
            pending: list[tuple[Any, str]] = []
            if any(invalid[index] is not None for index in measured):
                self.emit(indent, "Q = V = ()")
                for index in measured:
                    self.measurement(values[index], raws[index], invalid[index], indent, pending)
                self.flush(pending, indent)
                self.emit(indent, "M = _MS(Q, V)")
            else:  # no conditions: the columns at once
                for index in measured:
                    self.measurement(values[index], raws[index], None, indent, pending)
                self.columns(pending, indent)
            return
        # a quantity measured twice: the first valid value wins, the others are warnings (as in DeviceModel.decode)
        self.emit(indent, "measured = {}")
        for index in measured:
            self.record(values[index], raws[index], invalid[index], repr(values[index].name), indent)
        self.emit(indent, "M = _finish(measured, W)")

    def record(self, spec: Field, raw: str, invalid: str | None, key: str, indent: int) -> None:
        measure = spec.measure
        assert measure is not None
        quantity = self.constant(measure.quantity)
        low = self.constant(-math.inf if measure.low is None else measure.low)
        high = self.constant(math.inf if measure.high is None else measure.high)
        value = self.measured_value(spec, raw)
        if invalid is not None:
            value = f"None if ({invalid}) else {value}"
        self.emit(indent, f"measured[{key}] = ({quantity}, {value}, {low}, {high}, {range_text(measure)!r})")

    def flagged(self, layout: FlaggedGroupsLayout) -> CompiledDecoder | None:
        fields = layout.fields()
        if len({spec.name for spec in fields}) != len(fields):
            return None
        self.emit(0, "def decode(model_id, f_port, payload):")
        self.emit(1, "n = len(payload)")
        self.emit(1, f"if n < 5 or payload[0] != {layout.protocol_version}:")
        self.emit(2, "return None")
        version = layout.protocol_version
        self.begin(1, f'{{"protocol_version": {version}, "device_id": payload[1] << 8 | payload[2]}}')
        self.emit(1, "flags = payload[3] << 8 | payload[4]")
        groups = len(layout.groups)
        self.emit(1, f"if flags >> {groups}:")
        self.emit(
            2,
            'W.append(f"flags 0x{flags:04x} announce sensor groups this model does not have; ignored")',
        )
        self.emit(1, "o = 5")
        raws: list[str] = []
        invalid: list[str | None] = []
        for index, group in enumerate(layout.groups):
            size = 2 * len(group.values)
            self.emit(1, f"if flags & {1 << index}:")
            self.emit(2, f"if n < o + {size}:")
            self.emit(3, "return None")
            relative = tuple(
                Field(spec.name, spec.word, offset=2 * position) for position, spec in enumerate(group.values)
            )
            words = self.words(relative, "o", 2)
            self.emit(2, f"o += {size}")
            for spec, word in zip(group.values, words, strict=True):
                raw = self.raw(spec, word, 2)
                raws.append(raw)
                invalid.append(self.put(spec, raw, "F", repr(spec.name), 2))
        self.emit(1, "if n > o:")
        self.emit(2, 'W.append(f"{n - o} byte(s) after offset {o} ignored")')
        # measurements of the groups present, in field order
        quantities = [spec.measure.quantity for spec in fields if spec.measure is not None]
        unique = len(set(quantities)) == len(quantities)
        self.emit(1, "measured = {}" if not unique else "Q = V = ()")
        position = 0
        for index, group in enumerate(layout.groups):
            members = range(position, position + len(group.values))
            position += len(group.values)
            if not any(fields[member].measure is not None for member in members):
                continue
            self.emit(1, f"if flags & {1 << index}:")
            pending: list[tuple[Any, str]] = []
            for member in members:
                if fields[member].measure is None:
                    continue
                if unique:
                    self.measurement(fields[member], raws[member], invalid[member], 2, pending)
                else:
                    self.record(fields[member], raws[member], invalid[member], repr(fields[member].name), 2)
            self.flush(pending, 2)
        self.emit(1, "M = _finish(measured, W)" if not unique else "M = _MS(Q, V)")
        self.end(1, "M", empty_possible=False)
        return self.build("decentlab")

    def channel_values(self, channel: Any, words: list[str], number: int | None, indent: int) -> list[tuple]:
        """Lines that put one channel's values into F (or its group) from its words; its measured values as
        (field, raw, invalid condition, output key). `number`: the channel number of an any-channel entry (known
        when a shape is compiled; None in a channel function, which reads it from its argument)."""
        numbered = channel.key[0] is None
        target = "F"
        if channel.group is not None:
            group = channel.group
            if "{channel}" in group and numbered:
                name = (
                    repr(group.replace("{channel}", str(number)))
                    if number is not None
                    else f"{group!r}.replace('{{channel}}', str(number))"
                )
            else:
                name = repr(group.replace("{channel}", ""))
            self.emit(indent, f"T = F.setdefault({name}, {{}})")
            target = "T"
        measured = []
        for spec, word in zip(channel.values, words, strict=True):
            raw = self.raw(spec, word, indent)
            key = repr(spec.name)
            if numbered and "{channel}" in spec.name:
                key = (
                    repr(spec.name.replace("{channel}", str(number)))
                    if number is not None
                    else f"{spec.name!r}.replace('{{channel}}', str(number))"
                )
            invalid = self.put(spec, raw, target, key, indent)
            if spec.measure is not None:
                measured.append((spec, raw, invalid, key))
        return measured

    def channels(self, layout: ChannelLayout) -> CompiledDecoder | None:
        # one function per channel: (payload, start, number, F, measured, W) → False when its value is cut short
        exact: dict[Any, tuple[str, int]] = {}
        any_channel: dict[int, tuple[str, int]] = {}
        for channel in layout.channels:
            function = self.name("channel")
            self.emit(0, f"def {function}(payload, start, number, F, measured, W):")
            needed = max((spec.end for spec in channel.values), default=0)
            self.emit(1, f"if len(payload) < start + {needed}:")
            self.emit(2, "return False")
            words = self.words(channel.values, "start", 1)
            for spec, raw, invalid, key in self.channel_values(channel, words, None, 1):
                self.record(spec, raw, invalid, key, 1)
            self.emit(1, "return True")
            if channel.key[0] is None:
                any_channel[channel.key[1]] = (function, channel.size)  # type: ignore[index]
            else:  # two key bytes as one integer: no tuple to build per channel
                key = channel.key[0] << 8 | channel.key[1] if layout.key_bytes > 1 else channel.key[0]
                exact[key] = (function, channel.size)
        exact_table = self.constant({})
        any_table = self.constant({})
        shapes = _ChannelShapes(layout, self.warning)
        self.globals["_shapes"] = shapes.by_length
        self.globals["_learn"] = shapes.learn
        key_bytes, header = layout.key_bytes, layout.key_bytes + (1 if layout.length_byte else 0)
        self.emit(0, "def decode(model_id, f_port, payload):")
        self.emit(1, "n = len(payload)")
        # the payload's structure (keys, lengths) seen before: its own straight-line decoder
        self.emit(1, "known = _shapes.get(n)")
        self.emit(1, "if known is not None:")
        self.emit(2, "for shape in known:")
        self.emit(3, "decoded = shape(model_id, f_port, payload)")
        self.emit(3, "if decoded is not None:")
        self.emit(4, "return decoded")
        self.begin(1)
        self.emit(1, "measured = {}")
        self.emit(1, "o = 0")
        self.emit(1, "while o < n:")
        self.emit(2, f"if o + {key_bytes} > n:")
        self.emit(3, "return None")
        if key_bytes == 1:
            self.emit(2, "key = payload[o]")
            self.emit(2, f"found = {exact_table}.get(key)")
            self.emit(2, "number = None")
        else:
            self.emit(2, "key = payload[o] << 8 | payload[o + 1]")
            self.emit(2, f"found = {exact_table}.get(key)")
            self.emit(2, "number = None")
            self.emit(2, "if found is None:")
            self.emit(3, f"found = {any_table}.get(payload[o + 1])")
            self.emit(3, "number = payload[o]")
        self.emit(2, "if found is None:")
        self.emit(3, "return None")
        self.emit(2, "function, size = found")
        self.emit(2, f"if not function(payload, o + {header}, number, F, measured, W):")
        self.emit(3, "return None")
        if layout.length_byte:
            self.emit(2, f"if o + {key_bytes} >= n:")
            self.emit(3, "return None")
            self.emit(2, f"o = o + {header} + payload[o + {key_bytes}]")
        else:
            self.emit(2, f"o = o + {header} + size")
        self.emit(1, "if n:")
        self.emit(2, "_learn(payload)")
        self.end(1, "_finish(measured, W)")
        decoder = self.build("channels")
        namespace = decoder.__globals__  # type: ignore[attr-defined]
        for key, (function, size) in exact.items():
            namespace[exact_table][key] = (namespace[function], size)
        for key, (function, size) in any_channel.items():
            namespace[any_table][key] = (namespace[function], size)
        return decoder

    def shape(
        self, layout: ChannelLayout, entries: list[tuple[int, Any, int | None]], payload: bytes
    ) -> CompiledDecoder:
        """One straight-line decoder for payloads of this length with these (offset, channel, number) entries: the
        channel functions' code one after the other at fixed offsets, all words in one read, after a check of the
        key (and length) bytes — None when they differ, and the loop decodes."""
        header = layout.key_bytes + (1 if layout.length_byte else 0)
        structure, expected, position = "", [], 0
        for offset, _, _ in entries:
            structure += "x" * (offset - position) + "B" * header
            expected += payload[offset : offset + header]
            position = offset + header
        keys = self.constant(struct.Struct(">" + structure).unpack_from)
        self.emit(0, "def decode(model_id, f_port, payload):")
        self.emit(1, f"if {keys}(payload) != {self.constant(tuple(expected))}:")
        self.emit(2, "return None")
        self.begin(1)
        absolute = tuple(
            Field(spec.name, spec.word, offset=offset + header + spec.offset)
            for offset, channel, _ in entries
            for spec in channel.values
        )
        words = iter(self.words(absolute, "0", 1))
        measured: list[tuple] = []
        for _, channel, number in entries:
            mine = [next(words) for _ in channel.values]
            measured += self.channel_values(channel, mine, number, 1)
        output_keys = [key for _, _, _, key in measured]
        quantities = [spec.measure.quantity for spec, _, _, _ in measured]
        if len(set(output_keys)) == len(output_keys) and len(set(quantities)) == len(quantities):
            pending: list[tuple[Any, str]] = []
            conditional = any(invalid is not None for _, _, invalid, _ in measured)
            if conditional:
                self.emit(1, "Q = V = ()")
            for spec, raw, invalid, _ in measured:
                self.measurement(spec, raw, invalid, 1, pending)
            if conditional:
                self.flush(pending, 1)
                self.emit(1, "M = _MS(Q, V)")
            else:
                self.columns(pending, 1)
        else:  # a key or quantity twice: the generic bookkeeping (the last value of a key, the first of a quantity)
            self.emit(1, "measured = {}")
            for spec, raw, invalid, key in measured:
                self.record(spec, raw, invalid, key, 1)
            self.emit(1, "M = _finish(measured, W)")
        self.end(1, "M", empty_possible=False)
        return self.build("channel shape")


_MAX_STRUCTURES = 32  # per layout: compiled structures; distinct ones remembered, 16 times that


class _Structures:
    """The payload structures a layout's general path decoded, each compiled to a straight-line decoder once it was
    seen twice (`by_length`: per payload length, the decoders to try first). Bounded: the first `_MAX_STRUCTURES`
    distinct structures seen twice are compiled, later ones keep the general path."""

    def __init__(self, warning: str | None) -> None:
        self.warning = warning
        self.by_length: dict[int, list[CompiledDecoder]] = {}
        self.compiled: set[bytes] = set()
        self.seen: set[bytes] = set()

    def learn(self, payload: bytes) -> None:
        """After the general path decoded `payload`: note its structure, compile it at the second sighting."""
        if len(self.compiled) >= _MAX_STRUCTURES:
            return
        signature, build = self.structure(payload)
        if signature in self.compiled:
            return
        if signature not in self.seen:
            if len(self.seen) >= 16 * _MAX_STRUCTURES:
                self.seen.clear()
            self.seen.add(signature)
            return
        self.compiled.add(signature)
        self.by_length.setdefault(len(payload), []).append(build())

    def structure(self, payload: bytes) -> tuple[bytes, Callable[[], CompiledDecoder]]:
        """The payload's structure as bytes (length included), and what compiles its decoder."""
        raise NotImplementedError


class _ChannelShapes(_Structures):
    """The structures (key and length bytes at their offsets, for one payload length) of a channel layout: a sensor
    sends the same channels every time, and one such decoder is several times faster than the loop over channels."""

    def __init__(self, layout: ChannelLayout, warning: str | None) -> None:
        super().__init__(warning)
        self.layout = layout

    def structure(self, payload: bytes) -> tuple[bytes, Callable[[], CompiledDecoder]]:
        entries, signature = self.walk(payload)
        return signature, lambda: _Compiler(self.warning).shape(self.layout, entries, payload)

    def walk(self, payload: bytes) -> tuple[list[tuple[int, Any, int | None]], bytes]:
        """The (offset, channel, channel number) entries of a payload the loop decoded, and its structure as bytes."""
        layout = self.layout
        exact, any_channel = layout._index
        header = layout.key_bytes + (1 if layout.length_byte else 0)
        entries: list[tuple[int, Any, int | None]] = []
        signature = bytearray(len(payload).to_bytes(2, "big"))
        offset = 0
        while offset < len(payload):
            key = tuple(payload[offset : offset + layout.key_bytes])
            channel, number = exact.get(key), None
            if channel is None:
                channel, number = any_channel[key[1:]], key[0]
            entries.append((offset, channel, number))
            signature += offset.to_bytes(2, "big") + payload[offset : offset + header]
            offset += header + (payload[offset + layout.key_bytes] if layout.length_byte else channel.size)
        return entries, bytes(signature)


# --- Flurfunk's CBOR payload ---------------------------------------------------------------------------------------

# One CBOR number as the fast path takes it: an integer (major type 0 or 1, at most 8 bytes) or a finite float (its
# exponent bits not all ones: no NaN, no infinity); the doubles sensors send first, so the engine tries them first.
_CBOR_NUMBER = (
    rb"(?:\xfb(?:[^\x7f\xff].|[\x7f\xff][\x00-\xef]).{6}"
    rb"|\xfa(?:[^\x7f\xff].|[\x7f\xff][\x00-\x7f]).{2}"
    rb"|\xf9[\x00-\x7b\x80-\xfb]."
    rb"|[\x00-\x17\x20-\x37]|[\x18\x38].|[\x19\x39].{2}|[\x1a\x3a].{4}|[\x1b\x3b].{8})"
)
_MAX_SHAPES = 256  # key sets remembered per layout (a sensor sends one or a few; the bound only guards the memory)


def _cbor(layout: CborLayout, warning: str | None) -> CompiledDecoder:
    """The CBOR layout's fast path: a regular expression checks the whole payload at once (a map of the payload
    version first, then known keys to finite numbers, the item count the header says, no byte after the map), cbor2
    decodes it, and per set of keys (remembered) the fields, measurements and plausible ranges come from tables.
    Anything else — an unknown key, a value out of its range, an integral float, a non-canonical map — goes to
    CborLayout.read, which names the error or warns."""
    keys = {key: (quantity, low, high) for key, quantity, low, high in layout.keys}
    key_byte = b"(?:" + b"|".join(re.escape(cbor2.dumps(key)) for key in keys) + b")"
    version = re.escape(cbor2.dumps(0) + cbor2.dumps(layout.version))
    matchers: dict[int, Callable[[bytes], Any]] = {}
    for count in range(len(keys) + 1):  # the version and `count` quantities: a map header of one byte (<= 23)
        if count + 1 > 23:
            break
        pattern = bytes((0xA0 + count + 1,)) + version + b"(?:" + key_byte + _CBOR_NUMBER + b"){%d}" % count
        matchers[0xA0 + count + 1] = re.compile(pattern, re.DOTALL).fullmatch
    shapes: dict[tuple[int, ...], tuple[tuple[str, ...], tuple[Any, ...], tuple[float, ...], tuple[float, ...]]] = {}
    loads, new_tuple, measurements = cbor2.loads, tuple.__new__, Measurements
    warnings = (warning,) if warning else ()

    def shape_of(document_keys: tuple[int, ...]) -> tuple[Any, ...]:
        if len(shapes) >= _MAX_SHAPES:
            shapes.clear()
        quantities = tuple(keys[key] for key in document_keys[1:])
        shape = shapes[document_keys] = (
            ("version", *(quantity.value for quantity, _, _ in quantities)),
            tuple(quantity for quantity, _, _ in quantities),
            tuple(-math.inf if low is None else low for _, low, _ in quantities),
            tuple(math.inf if high is None else high for _, _, high in quantities),
        )
        return shape

    structures = _CborStructures(layout, warning)
    by_length, learn = structures.by_length, structures.learn

    def decode(model_id: str, f_port: int, payload: bytes) -> Decoded | None:
        known = by_length.get(len(payload))
        if known is not None:  # a structure seen before: its own decoder
            for structure in known:
                decoded = structure(model_id, f_port, payload)
                if decoded is not None:
                    return decoded
        if not payload:
            return None
        matches = matchers.get(payload[0])
        if matches is None or matches(payload) is None:
            return None
        try:
            document = loads(payload)
        except Exception:  # not for a payload the pattern took; should cbor2 think otherwise, the reader names it
            return None
        document_keys = tuple(document)
        if len(document_keys) != payload[0] - 0xA0:
            return None  # a key given twice
        names, quantities, lows, highs = shapes.get(document_keys) or shape_of(document_keys)
        values = list(document.values())
        del values[0]  # the version
        floats = list(map(float, values))
        # vendor `data` is JSON: an integral float would show as an int; none here (integral values are the ints)
        if sum(map(float.is_integer, floats)) + sum(map(is_, values, floats)) != len(values):
            return None
        if not (all(map(le, lows, values)) and all(map(le, values, highs))):
            return None  # the reader warns
        fields = dict(zip(names, document.values(), strict=True))
        measured = measurements(quantities, tuple(floats))
        learn(payload)
        return new_tuple(Decoded, (model_id, f_port, fields, measured, warnings))

    return decode


# a CBOR number's first byte → the struct code of what follows it ("" for a value in the byte itself)
_CBOR_FOLLOWING = {
    **dict.fromkeys(range(0x18), ""),
    **dict.fromkeys(range(0x20, 0x38), ""),
    0x18: "B",
    0x19: "H",
    0x1A: "I",
    0x1B: "Q",
    0x38: "B",
    0x39: "H",
    0x3A: "I",
    0x3B: "Q",
    0xF9: "e",
    0xFA: "f",
    0xFB: "d",
}
_LARGEST_FLOAT = sys.float_info.max


def _cbor_float(expression: str, is_float: bool | None) -> str:
    """A number of a CBOR structure as the measurement's float: a float read as it is, an integer read converted, a
    number fixed by the structure (`is_float` None) as a float literal."""
    if is_float is None:
        return repr(float(expression))
    return expression if is_float else f"float({expression})"


class _CborStructures(_Structures):
    """The byte structures (which key where, each number's width and type) of CBOR payloads the pattern path
    decoded: a sensor sends the same keys with the same number widths every time, and such a decoder checks the
    structure's bytes in one read and reads the numbers in one more."""

    def __init__(self, layout: CborLayout, warning: str | None) -> None:
        super().__init__(warning)
        self.keys = {cbor2.dumps(key): (quantity, low, high) for key, quantity, low, high in layout.keys}
        self.version = cbor2.dumps(0) + cbor2.dumps(layout.version)

    def structure(self, payload: bytes) -> tuple[bytes, Callable[[], CompiledDecoder]]:
        """(After the pattern path decoded it: a canonical map, version first, known keys, finite numbers.)"""
        fixed, numbers = self.walk(payload)
        signature = bytes(byte for offset in sorted(fixed) for byte in (offset, fixed[offset]))
        return signature + len(payload).to_bytes(2, "big"), lambda: self.compile(fixed, numbers)

    def walk(self, payload: bytes) -> tuple[dict[int, int], list[tuple[int, str, int, Any]]]:
        """The bytes the structure fixes (offset → byte: map header, version, keys, first bytes of numbers) and the
        numbers (offset of what follows the first byte, struct code, first byte, key's (quantity, low, high))."""
        fixed = {offset: payload[offset] for offset in range(1 + len(self.version))}
        numbers = []
        offset = 1 + len(self.version)
        while offset < len(payload):
            key_size = 1 if payload[offset] < 0x18 else 2  # the pattern took keys of at most 255
            key = payload[offset : offset + key_size]
            fixed.update((offset + index, byte) for index, byte in enumerate(key))
            offset += key_size
            first = payload[offset]
            fixed[offset] = first
            code = _CBOR_FOLLOWING[first]
            numbers.append((offset + 1, code, first, self.keys[key]))
            offset += 1 + (struct.calcsize(code) if code else 0)
        return fixed, numbers

    def compile(self, fixed: dict[int, int], numbers: list[tuple[int, str, int, Any]]) -> Any:
        compiler = _Compiler(self.warning)
        structure, position = "", 0
        for offset in sorted(fixed):
            structure += "x" * (offset - position) + "B"
            position = offset + 1
        heads = compiler.constant(struct.Struct(">" + structure).unpack_from)
        expected = compiler.constant(tuple(fixed[offset] for offset in sorted(fixed)))
        layout, names, position = "", [], 0
        for offset, code, _first, _key in numbers:
            if code:
                layout += "x" * (offset - position) + code
                position = offset + struct.calcsize(code)
                names.append(compiler.name("v"))
        compiler.emit(0, "def decode(model_id, f_port, payload):")
        compiler.emit(1, f"if {heads}(payload) != {expected}:")
        compiler.emit(2, "return None")
        read = iter(names)
        # (expression, whether a float was read (None: a number fixed by the structure), key)
        values: list[tuple[str, bool | None, Any]] = []
        if names:
            unpack = compiler.constant(struct.Struct(">" + layout).unpack_from)
            compiler.emit(1, f"{', '.join(names)}, = {unpack}(payload)")
        for _offset, code, first, key in numbers:
            if not code:  # the number is in its first byte: fixed by the structure, in range when it was learned
                values.append((repr(first if first < 0x20 else -1 - (first - 0x20)), None, key))
            elif code in "efd":
                values.append((next(read), True, key))
            elif first >= 0x38:
                name = next(read)
                compiler.emit(1, f"{name} = -1 - {name}")
                values.append((name, False, key))
            else:
                values.append((next(read), False, key))
        tests = []
        for expression, is_float, (_quantity, low, high) in values:
            if is_float is None:
                continue
            low = -_LARGEST_FLOAT if low is None else low  # also keeps NaN and infinities out
            high = _LARGEST_FLOAT if high is None else high
            tests.append(f"not ({low!r} <= {expression} <= {high!r})")
        tests += [f"{expression}.is_integer()" for expression, is_float, _ in values if is_float]
        if tests:
            # out of range (the reader warns) or an integral float (vendor JSON shows an int): the pattern path
            compiler.emit(1, f"if {' or '.join(tests)}:")
            compiler.emit(2, "return None")
        version = cbor2.loads(self.version[1:])
        entries = [f'"version": {version!r}'] + [
            f"{quantity.value!r}: {expression}" for expression, _, (quantity, _, _) in values
        ]
        compiler.emit(1, f"F = {{{', '.join(entries)}}}")
        compiler.columns(
            [(quantity, _cbor_float(expression, is_float)) for expression, is_float, (quantity, _, _) in values], 1
        )
        warnings = repr((self.warning,) if self.warning else ())
        compiler.emit(1, f"return _new_tuple(_D, (model_id, f_port, F, M, {warnings}))")
        return compiler.build("cbor structure")


# --- Adeunis Temp 4: its periodic data frame ----------------------------------------------------------------------

_ADEUNIS_SERIES = {  # (two probes, values) → the struct that reads every value after the status byte
    (two, count): struct.Struct(f">{count * (2 if two else 1)}h") for two in (False, True) for count in range(128)
}


def _adeunis_periodic(layout: AdeunisTemp4Layout, warning: str | None) -> CompiledDecoder:
    """Temp 4's periodic data (frame code 0x57, what the sensor sends every period) without the reader's
    bookkeeping: the series in one read; any other frame, or one the reader would refuse, goes to
    AdeunisTemp4Layout.read. tests/test_decoders_compiled.py holds both to the same output."""
    kind, quantity, first_warnings = _ADEUNIS_TYPES[0x57], (layout.quantity,), [warning] if warning else []
    series_struct, unpack_time = _ADEUNIS_SERIES, struct.Struct(">I").unpack_from

    def decode(model_id: str, f_port: int, payload: bytes) -> Decoded | None:
        n = len(payload)
        if n < 2 or payload[0] != 0x57:
            return None
        status = payload[1]
        two, stamped = status & 0x10, status & 0x04
        width = 4 if two else 2
        end = n - 4 if stamped else n
        count = len(range(2, end, width))
        if 2 + count * width > n or (stamped and n < 4):
            return None  # a value or the timestamp cut short: the reader names the offset
        raws = series_struct[bool(two), count].unpack_from(payload, 2)
        values = [raw // 10 if not raw % 10 else raw / 10 for raw in raws]
        content: dict[str, Any] = {"type": kind, "status": adeunis_status(status)}
        if stamped:
            content["timestamp"] = _adeunis_time(unpack_time(payload, n - 4)[0])
        content["decodingInfo"] = "values: [t=0, t-1, t-2, ...]"
        if two:
            content["temperatures"] = [
                {"name": "temperature 1", "unit": _CELSIUS, "values": values[0::2]},
                {"name": "temperature 2", "unit": _CELSIUS, "values": values[1::2]},
            ]
        else:
            content["temperatures"] = [{"name": "temperature 1", "unit": _CELSIUS, "values": values}]
        warnings = [*first_warnings, "low battery"] if status & 0x02 else first_warnings
        measured = Measurements(quantity, (float(values[0]),)) if values else ()
        return tuple.__new__(Decoded, (model_id, f_port, {"bytes": content}, measured, tuple(warnings)))

    return decode


# --- SenseCAP S210x: telemetry frames -----------------------------------------------------------------------------

_SENSECAP_FRAMES = {count: struct.Struct("<" + "xHi" * count) for count in range(1, 37)}  # 7·36 + 2 <= 255 bytes


def _sensecap_telemetry(layout: SensecapFramesLayout, warning: str | None) -> CompiledDecoder:
    """SenseCAP S210x payloads of telemetry frames only (data ids above 4096, what the sensor sends every period):
    all frames in one read. Version, battery, sensor id and other frames, and a payload of the wrong length, go to
    SensecapFramesLayout.read. tests/test_decoders_compiled.py holds both to the same output."""
    table: dict[int, list[tuple[Any, float]]] = {}
    for measurement_id, quantity, factor in layout.measurements:
        table.setdefault(measurement_id, []).append((quantity, factor))
    warnings = (warning,) if warning else ()

    def decode(model_id: str, f_port: int, payload: bytes) -> Decoded | None:
        n = len(payload)
        if n < 9 or (n - 2) % 7:
            return None
        read = _SENSECAP_FRAMES[(n - 2) // 7].unpack_from(payload)
        ids = read[0::2]
        if min(ids) <= 4096:
            return None
        messages = []
        measurements: list[Measurement] = []
        seen = set()
        for data_id, signed in zip(ids, read[1::2], strict=True):
            value = signed / 1000 if signed % 1000 else signed // 1000
            messages.append({"type": "report_telemetry", "measurementId": data_id, "measurementValue": value})
            for quantity, factor in table.get(data_id, ()):
                if quantity not in seen:  # the first value of a quantity, as DeviceModel.decode keeps it
                    seen.add(quantity)
                    measurements.append(Measurement(quantity, value * factor if factor != 1 else float(value)))
        fields = {"valid": True, "err": 0, "payload": payload.hex().upper(), "messages": messages}
        return tuple.__new__(Decoded, (model_id, f_port, fields, tuple(measurements), warnings))

    return decode


# --- SenseCAP S2120: the periodic packet --------------------------------------------------------------------------

# Frame 0x01 (temperature, humidity, light, UV, wind speed) and frame 0x02 (wind direction, rain, pressure), each
# value two's complement big-endian in the width the codec reads; then frame 0x03 (battery) or nothing.
_V2_PERIODIC = struct.Struct(">BhbibhBhih")
_V2_BATTERY = struct.Struct(">Bb")


def _sensecap_v2_periodic(layout: SensecapV2Layout, warning: str | None) -> CompiledDecoder:
    """The S2120's periodic packet (frames 0x01 and 0x02, optionally 0x03) in one read; anything else goes to
    SensecapV2Layout.read. tests/test_decoders_compiled.py holds both to the same output."""
    quantity_of = {str(known): (quantity, factor) for known, quantity, factor in layout.measurements}
    slots = []  # per value: divisor, whether it is an integer, measurement id, kind, quantity (or None), factor
    for frame in ("01", "02"):
        for *_span, divisor, measurement_id, kind in _V2_TELEMETRY[frame]:
            quantity, factor = quantity_of.get(measurement_id, (None, 1))
            slots.append((divisor, type(divisor) is int, measurement_id, kind, quantity, factor))
    measured = tuple(slot[4] for slot in slots if slot[4] is not None)
    with_battery = (*measured, Quantity.BATTERY_PCT)
    warnings = (warning,) if warning else ()

    def decode(model_id: str, f_port: int, payload: bytes) -> Decoded | None:
        n = len(payload)
        if n not in (20, 22) or payload[0] != 0x01 or payload[11] != 0x02 or (n == 22 and payload[20] != 0x03):
            return None
        read = _V2_PERIODIC.unpack_from(payload)
        first: list[dict[str, Any]] = []
        second: list[dict[str, Any]] = []
        values: list[float] = []
        for index, raw, (divisor, integral, measurement_id, kind, quantity, factor) in zip(
            range(8), (*read[1:6], *read[7:10]), slots, strict=True
        ):
            # js_number(raw / divisor) as loraWANV2DataFormat gives it; a negative value comes out as a string
            if raw < 0:
                value: Any = "-" + js_string(-raw / divisor)
            elif integral:
                value = raw // divisor if raw % divisor == 0 else raw / divisor
            else:
                value = js_number(raw / divisor)
            (first if index < 5 else second).append(
                {"measurementValue": value, "measurementId": measurement_id, "type": kind}
            )
            if quantity is not None:
                number = float(value)
                values.append(number * factor if factor != 1 else number)
        messages = [first, second]
        quantities = measured
        if n == 22:
            battery = _V2_BATTERY.unpack_from(payload, 20)[1]
            messages.append([{"Battery(%)": "-" + js_string(-battery) if battery < 0 else battery}])
            if battery >= 0:
                quantities = with_battery
                values.append(float(battery))
        fields = {"err": 0, "payload": payload.hex().upper(), "valid": True, "messages": messages}
        return tuple.__new__(Decoded, (model_id, f_port, fields, Measurements(quantities, tuple(values)), warnings))

    return decode
