"""Layouts for framed vendor protocols a table of fields cannot express (SenseCAP's 7-byte frames and its v2 data
ids) and Flurfunk's own CBOR sensor payload. Their ids, quantities and factors come from the spec files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2

from flurfunk.contracts import Quantity

from .decoded import Measurement
from .js import js_number, js_string
from .layout import Field, Found, Measure, Reader, Word, finite_number

MeasurementTable = tuple[tuple[int, Quantity, float], ...]


def _scaled(table: MeasurementTable, measurement_id: int, value: float, found: Found) -> None:
    for known, quantity, factor in table:
        if known == measurement_id and math.isfinite(value):
            found.direct.append(Measurement(quantity, value * factor if factor != 1 else float(value)))


# --- SenseCAP S210x: 7-byte frames [channel][data id u16le][value 4 bytes le] and a 2-byte CRC ----------------------


@dataclass(frozen=True)
class SensecapFramesLayout:
    """SenseCAP S210x sensors (sensecap210x-common-decoder.js): the vendor's `{valid, err, payload, messages}`."""

    measurements: MeasurementTable

    def fields(self) -> tuple[Field, ...]:
        return ()

    def read(self, reader: Reader, found: Found) -> None:
        payload = reader.payload
        messages: list[dict[str, Any]] = []
        found.fields.update({"valid": True, "err": 0, "payload": payload.hex().upper(), "messages": messages})
        if (len(payload) - 2) % 7 != 0 or len(payload) < 2:
            # the vendor returns this as data, not as an error
            found.fields.update({"valid": False, "err": -2})
            found.warnings.append(f"length check fail: {len(payload)} bytes is not 7·n + 2 (frames and CRC)")
            return
        low = high = None
        for start in range(0, len(payload) - 2, 7):
            frame = payload[start : start + 7]
            data_id = frame[1] | frame[2] << 8
            value_bytes = frame[3:7]
            unsigned = int.from_bytes(value_bytes, "little")
            if data_id > 4096:
                signed = int.from_bytes(value_bytes, "little", signed=True)
                value = js_number(signed / 1000)
                messages.append({"type": "report_telemetry", "measurementId": data_id, "measurementValue": value})
                _scaled(self.measurements, data_id, value, found)
            elif data_id == 0:
                messages.append(
                    {
                        "type": "upload_version",
                        "hardwareVersion": f"{unsigned >> 24}.{unsigned >> 16 & 0xFF}",
                        "softwareVersion": f"{unsigned >> 8 & 0xFF}.{unsigned & 0xFF}",
                    }
                )
            elif data_id == 2:
                low = value_bytes[::-1].hex().upper()
            elif data_id == 3:
                high = value_bytes[::-1].hex().upper()
            elif data_id == 7:
                power = unsigned & 0xFFFF
                messages.append({"type": "upload_battery", "battery": power})
                messages.append({"type": "upload_interval", "interval": (unsigned >> 16) * 60})
                found.direct.append(Measurement(Quantity.BATTERY_PCT, float(power)))
            elif data_id == 0x120:
                messages.append({"type": "report_remove_sensor", "channel": 1})
            elif data_id not in (1, 4, 5, 6):  # sensor version, ids the codec reads and drops
                messages.append({"type": "unknown_message", "dataID": data_id, "dataValue": value_bytes.hex().upper()})
        if high and low:
            messages.insert(0, {"type": "upload_sensor_id", "channel": 1, "sensorId": high + low})

    def write(self, raws: Mapping[str, int]) -> bytes:
        raise NotImplementedError  # no encoder: see encode_quantities

    def encode_quantities(self, model_id: str, values: Mapping[Quantity, float]) -> bytes:
        """Telemetry frames on channel 1 for every quantity of the table given, then a CRC the codec ignores."""
        out = bytearray()
        for measurement_id, quantity, factor in self.measurements:
            number = _given_number(model_id, quantity, values)
            raw = round(number / factor * 1000)
            if not -(1 << 31) <= raw < 1 << 31:
                raise ValueError(f"{model_id}: {quantity.value} {number:g} is out of range")
            out += bytes((1,)) + measurement_id.to_bytes(2, "little") + raw.to_bytes(4, "little", signed=True)
        return bytes(out) + _crc16_ccitt(bytes(out)).to_bytes(2, "big")


def _crc16_ccitt(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1 ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


# --- SenseCAP S2120 weather station: data id byte, then a value whose length the id gives -------------------------

_V2_LENGTHS = {
    **dict.fromkeys(("01", "20", "21", "30", "31", "33", "40", "41", "42", "43", "44", "45"), 20),
    "02": 16,
    **dict.fromkeys(("03", "06"), 2),
    **dict.fromkeys(("05", "34"), 8),
    **dict.fromkeys(("04", "10", "32", "35", "36", "37", "38", "39"), 18),
}
_SENSOR_ERRORS = {
    "00": "CCL_SENSOR_ERROR_NONE",
    "01": "CCL_SENSOR_NOT_FOUND",
    "02": "CCL_SENSOR_WAKEUP_ERROR",
    "03": "CCL_SENSOR_NOT_RESPONSE",
    "04": "CCL_SENSOR_DATA_EMPTY",
    "05": "CCL_SENSOR_DATA_HEAD_ERROR",
    "06": "CCL_SENSOR_DATA_CRC_ERROR",
    "07": "CCL_SENSOR_DATA_B1_NO_VALID",
    "08": "CCL_SENSOR_DATA_B2_NO_VALID",
    "09": "CCL_SENSOR_RANDOM_NOT_MATCH",
    "0A": "CCL_SENSOR_PUBKEY_SIGN_VERIFY_FAILED",
    "0B": "CCL_SENSOR_DATA_SIGN_VERIFY_FAILED",
    "0C": "CCL_SENSOR_DATA_VALUE_HI",
    "0D": "CCL_SENSOR_DATA_VALUE_LOW",
    "0E": "CCL_SENSOR_DATA_VALUE_MISSED",
    "0F": "CCL_SENSOR_ARG_INVAILD",
    "10": "CCL_SENSOR_RS485_MASTER_BUSY",
    "11": "CCL_SENSOR_RS485_REV_DATA_ERROR",
    "12": "CCL_SENSOR_RS485_REG_MISSED",
    "13": "CCL_SENSOR_RS485_FUN_EXE_ERROR",
    "14": "CCL_SENSOR_RS485_WRITE_STRATEGY_ERROR",
    "15": "CCL_SENSOR_CONFIG_ERROR",
    "FF": "CCL_SENSOR_DATA_ERROR_UNKONW",
}
# (data id, slice of its value in hex digits, divisor, measurement id, type) as the vendor codec lists them
_V2_TELEMETRY = {
    "01": (
        (0, 4, 10, "4097", "Air Temperature"),
        (4, 6, 1, "4098", "Air Humidity"),
        (6, 14, 1, "4099", "Light Intensity"),
        (14, 16, 10, "4190", "UV Index"),
        (16, 20, 10, "4105", "Wind Speed"),
    ),
    "02": (
        (0, 4, 1, "4104", "Wind Direction Sensor"),
        (4, 12, 1000, "4113", "Rain Gauge"),
        (12, 16, 0.1, "4101", "Barometric Pressure"),
    ),
}


def _v2_number(hex_digits: str, divisor: float = 1) -> Any:
    """loraWANV2DataFormat: two's complement of the big-endian digits; negatives come out as strings ("-1.5"),
    nothing (a cut value) as NaN, which JSON shows as null."""
    if not hex_digits:
        return None
    raw = int(hex_digits, 16)
    bits = 4 * len(hex_digits)
    if raw >> (bits - 1):
        return "-" + js_string(((1 << bits) - raw) / divisor)
    return js_number(raw / divisor)


def _v2_int_times_60(value: Any) -> Any:
    # parseInt(String(value)) * 60: the integer part of the number (or of the "-n" string)
    if value is None:
        return None
    return js_number(int(float(value)) * 60)


@dataclass(frozen=True)
class SensecapV2Layout:
    """SenseCAP S2120 8-in-1 weather station (sensecap2120-8-in-1-decoder.js): `{err, payload, valid, messages}`,
    where messages holds one list per data id (empty for ids the codec does not interpret)."""

    measurements: MeasurementTable

    def fields(self) -> tuple[Field, ...]:
        return ()

    def read(self, reader: Reader, found: Found) -> None:
        text = reader.payload.hex().upper()
        messages: list[list[dict[str, Any]]] = []
        found.fields.update({"err": 0, "payload": text, "valid": True, "messages": messages})
        remaining = text
        count = 0
        # the codec loops `for (i = 0; i < bytes.length; i++)` while it shortens `bytes`: i counts frames
        while count < len(remaining):
            data_id = remaining[:2]
            length = _V2_LENGTHS.get(data_id)
            if length is None:
                found.warnings.append(
                    f"unknown data id 0x{data_id} at offset {(len(text) - len(remaining)) // 2}; rest ignored"
                )
                break
            value = remaining[2 : 2 + length]
            if len(value) < 2:
                break
            if len(value) < length:
                found.warnings.append(f"data id 0x{data_id} is cut short")
            remaining = remaining[2 + length :]
            messages.append(self._messages(data_id, value, found))
            count += 1

    def _messages(self, data_id: str, value: str, found: Found) -> list[dict[str, Any]]:
        if data_id in _V2_TELEMETRY:
            out = []
            for start, end, divisor, measurement_id, kind in _V2_TELEMETRY[data_id]:
                number = _v2_number(value[start:end], divisor)
                out.append({"measurementValue": number, "measurementId": measurement_id, "type": kind})
                if number is not None:
                    _scaled(self.measurements, int(measurement_id), float(number), found)
            return out
        if data_id == "03":
            battery = _v2_number(value)
            self._battery(battery, found)
            return [{"Battery(%)": battery}]
        if data_id == "04":
            battery = _v2_number(value[0:2])
            self._battery(battery, found)
            hardware, firmware = value[2:6], value[6:10]
            return [
                {
                    "Battery(%)": battery,
                    "Hardware Version": f"{_v2_text(hardware[0:2])}.{_v2_text(hardware[2:4])}",
                    "Firmware Version": f"{_v2_text(firmware[0:2])}.{_v2_text(firmware[2:4])}",
                    "measureInterval": _v2_int_times_60(_v2_number(value[10:14])),
                    "gpsInterval": _v2_int_times_60(_v2_number(value[14:18])),
                }
            ]
        if data_id == "05":
            return [
                {
                    "measureInterval": _v2_int_times_60(_v2_number(value[0:4])),
                    "gpsInterval": _v2_int_times_60(_v2_number(value[4:8])),
                }
            ]
        if data_id == "06":
            found.warnings.append(f"sensor error {value}")
            return [
                {
                    "measurementId": "4101",
                    "type": "sensor_error_event",
                    "errCode": value,
                    "descZh": _SENSOR_ERRORS.get(value, "CC_OTHER_FAILED"),
                }
            ]
        if data_id == "10":
            bits = int(value[0:2], 16)
            return [{"status": bits >> 3 & 1, "channelType": bits & 7, "sensorEui": value[2:]}]
        return []

    @staticmethod
    def _battery(battery: Any, found: Found) -> None:
        if isinstance(battery, int | float):
            found.direct.append(Measurement(Quantity.BATTERY_PCT, float(battery)))

    def write(self, raws: Mapping[str, int]) -> bytes:
        raise NotImplementedError  # no encoder: see encode_quantities

    def encode_quantities(self, model_id: str, values: Mapping[Quantity, float]) -> bytes:
        """The station's periodic packet: frame 0x01 (temperature, humidity, light, UV, wind speed) and frame 0x02
        (wind direction, rain, pressure) with every quantity of the table, then frame 0x03 (battery) when given. A
        value the table does not map (the UV index) is sent as 0."""
        quantity_of = {str(known): (quantity, factor) for known, quantity, factor in self.measurements}
        frames = []
        for data_id, slots in _V2_TELEMETRY.items():
            digits = data_id
            for start, end, divisor, measurement_id, _kind in slots:
                raw = 0
                if measurement_id in quantity_of:
                    quantity, factor = quantity_of[measurement_id]
                    raw = round(_given_number(model_id, quantity, values) / factor * divisor)
                digits += _v2_digits(model_id, measurement_id, raw, end - start)
            frames.append(digits)
        if values.get(Quantity.BATTERY_PCT) is not None:
            battery = round(_given_number(model_id, Quantity.BATTERY_PCT, values))
            if not 0 <= battery <= 100:
                raise ValueError(f"{model_id}: battery_pct {battery} is out of range (0..100)")
            frames.append("03" + _v2_digits(model_id, "battery", battery, 2))
        return bytes.fromhex("".join(frames))


def _given_number(model_id: str, quantity: Quantity, values: Mapping[Quantity, float]) -> float:
    given = values.get(quantity)
    if given is None:
        raise ValueError(f"{model_id}: missing quantity {quantity.value}")
    return finite_number(model_id, quantity.value, given)


def _v2_digits(model_id: str, what: str, raw: int, digits: int) -> str:
    """`raw` as the codec reads it back: two's complement, big-endian, `digits` hex digits."""
    bits = 4 * digits
    if not -(1 << (bits - 1)) <= raw < 1 << (bits - 1):
        raise ValueError(f"{model_id}: measurement {what} does not fit {digits // 2} byte(s) (raw {raw})")
    return f"{raw & ((1 << bits) - 1):0{digits}X}"


def _v2_text(hex_digits: str) -> str:
    number = _v2_number(hex_digits)
    return "NaN" if number is None else number if isinstance(number, str) else js_string(number)


# --- Flurfunk's own sensors: a CBOR map {0: version, key: value, …} ---------------------------------------------


@dataclass(frozen=True)
class CborLayout:
    """Flurfunk's home-built sensors: a small CBOR map, key 0 the payload version, keys 1..23 one quantity each
    (firmware-specs/flurfunk-cbor.toml). Unknown keys are a warning, so older gateways read newer sensors."""

    version: int
    keys: tuple[tuple[int, Quantity, float | None, float | None], ...]

    def fields(self) -> tuple[Field, ...]:
        return tuple(
            Field(quantity.value, Word.U8, measure=Measure(quantity, low=low, high=high, default=math.nan))
            for _key, quantity, low, high in self.keys
        )

    def read(self, reader: Reader, found: Found) -> None:
        stream = io.BytesIO(reader.payload)
        try:
            document = cbor2.CBORDecoder(stream).decode()
        except Exception as error:  # cbor2 raises many kinds on hostile input; all mean "not our CBOR"
            raise reader.error(f"not CBOR: {error}", stream.tell()) from None
        if stream.tell() != len(reader.payload):
            raise reader.error("bytes after the CBOR map", stream.tell())
        if not isinstance(document, dict):
            raise reader.error(f"the payload is a CBOR {type(document).__name__}, not a map", 0)
        version = document.get(0)
        if version != self.version:
            raise reader.error(f"payload version {version!r}, this spec reads version {self.version}")
        by_key = {key: (quantity, low, high) for key, quantity, low, high in self.keys}
        found.fields["version"] = version
        for key, value in document.items():
            if key == 0:
                continue
            if not isinstance(key, int) or isinstance(key, bool) or key not in by_key:
                found.warnings.append(f"unknown key {key!r} ignored")
                continue
            quantity, low, high = by_key[key]
            if not _finite_number(value):
                shown = repr(value) if not isinstance(value, int) else f"an integer of {value.bit_length()} bits"
                raise reader.error(f"key {key} ({quantity.value}) must be a finite number, got {shown}")
            found.fields[quantity.value] = js_number(value)
            found.direct.append(Measurement(quantity, float(value)))
            if (low is not None and value < low) or (high is not None and value > high):
                found.warnings.append(f"{quantity.value} {value:g} is outside {_bounds(low, high)}")

    def write(self, raws: Mapping[str, int]) -> bytes:
        raise NotImplementedError

    def encode_quantities(self, model_id: str, values: Mapping[Quantity, float]) -> bytes:
        """The quantities given (at least one) that this payload version has a key for; canonical CBOR keeps
        numbers as short as they can be without loss."""
        document: dict[int, float | int] = {0: self.version}
        for key, quantity, low, high in self.keys:
            if values.get(quantity) is None:
                continue  # a sensor sends only what it measures
            number = _given_number(model_id, quantity, values)
            if (low is not None and number < low) or (high is not None and number > high):
                raise ValueError(f"{model_id}: {quantity.value} {number:g} is out of range ({_bounds(low, high)})")
            document[key] = int(number) if number.is_integer() and abs(number) < 2**53 else number
        if len(document) == 1:
            raise ValueError(
                f"{model_id}: missing quantity: give at least one of {', '.join(q.value for _, q, *_ in self.keys)}"
            )
        return cbor2.dumps(document, canonical=True)


def _finite_number(value: object) -> bool:
    """A number a Reading can carry: not a bool, and finite as a float (a CBOR bignum can be too large for one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the largest float
        return False


def _bounds(low: float | None, high: float | None) -> str:
    return f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"


# --- Adeunis Temp 4: frame code, status byte, frame body --------------------------------------------------------

_ADEUNIS_EPOCH = 1356998400  # 2013-01-01T00:00:00Z, the device clock's zero
_CELSIUS = "\u00b0C"
_ADEUNIS_TYPES = {
    0x10: "0x10 Temp 4 configuration",
    0x20: "0x20 Configuration",
    0x2F: "0x2f Downlink ack",
    0x30: "0x30 Temp 4 keep alive",
    0x33: "0x33 Set register status",
    0x36: "0x36 Alert message",
    0x37: "0x37 Software version",
    0x57: "0x57 Temp 4 periodic data",
    0x58: "0x58 Temp 4 alarm",
}
_ACK_STATUS = {1: "success", 2: "errorGeneric", 3: "errorWrongState", 4: "errorInvalidRequest"}
_REGISTER_STATUS = {
    1: "success",
    2: "successNoUpdate",
    3: "errorCoherency",
    4: "errorInvalidRegister",
    5: "errorInvalidValue",
    6: "errorTruncatedValue",
    7: "errorAccesNotAllowed",  # sic, the vendor's spelling
}
_ALERT_CODES = {0: "normalState", 1: "uplinkDownlinkForbidden"}
_ALARM_STATUS = {1: "highThreshold", 2: "lowThreshold"}
_PARTIAL_MISSING_NETWORK = 1  # the codec's PartialDecodingReason.MISSING_NETWORK


def _adeunis_time(seconds: int) -> str:
    moment = datetime.fromtimestamp(seconds + _ADEUNIS_EPOCH, UTC)
    return moment.isoformat(timespec="milliseconds")[:-6]  # Date.toJSON() without its "Z" (here "+00:00")


def adeunis_status(status: int) -> dict[str, Any]:
    """The codec's `status` object of a frame's status byte."""
    return {
        "frameCounter": (status & 0xE0) >> 5,
        "hardwareError": False,
        "lowBattery": bool(status & 0x02),
        "configurationDone": bool(status & 0x01),
        "configurationInconsistency": bool(status & 0x08),
        "configuration2ChannelsActivated": bool(status & 0x10),
        "timestamp": bool(status & 0x04),
    }


class _Frame:
    """Bounds-checked big-endian reads of one Adeunis frame (the vendor's readUInt16BE etc.); reading past the end,
    where the codec would misread `undefined` as 0, is a DecodeError naming the offset."""

    __slots__ = ("payload", "reader")

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.payload = reader.payload

    def read(self, offset: int, size: int, what: str, signed: bool = False) -> int:
        if offset < 0 or offset + size > len(self.payload):
            where = min(max(offset, 0), len(self.payload))  # a value beyond the end: where the payload ends
            raise self.reader.error(f"{what} needs {size} byte(s), the payload has {len(self.payload)} bytes", where)
        return int.from_bytes(self.payload[offset : offset + size], "big", signed=signed)

    def celsius(self, offset: int, what: str) -> int | float:
        return js_number(self.read(offset, 2, what, signed=True) / 10)

    def time(self, offset: int) -> str:
        return _adeunis_time(self.read(offset, 4, "timestamp"))


@dataclass(frozen=True)
class AdeunisTemp4Layout:
    """Adeunis Temp 4 (temp_lib.js): `{bytes: {type, status, ...}}` for every frame code the codec knows — 0x10
    configuration, 0x20 network configuration, 0x2f downlink ack, 0x30 keep alive, 0x33 register status, 0x36
    alert, 0x37 software version, 0x57 periodic data, 0x58 alarm — and `{bytes: {type: "Unsupported"}}` (with a
    warning) for any other. The measurement is probe 1's newest temperature."""

    quantity: Quantity

    def fields(self) -> tuple[Field, ...]:
        return ()

    def read(self, reader: Reader, found: Found) -> None:
        payload = reader.payload
        code = payload[0] if payload else None
        if code not in _ADEUNIS_TYPES:
            # the codec has no parser for it and says so as data, not as an error
            found.fields["bytes"] = {"type": "Unsupported"}
            what = "no frame code" if code is None else f"frame code 0x{code:02x}"
            found.warnings.append(f"{what}: not a Temp 4 frame (the codec answers Unsupported)")
            return
        if len(payload) < 2:
            raise reader.error("the status byte is missing", 1)
        status = payload[1]
        frame = _Frame(reader)
        two = bool(status & 0x10)
        stamped = bool(status & 0x04)
        content: dict[str, Any] = {"type": _ADEUNIS_TYPES[code], "status": adeunis_status(status)}
        names = ("temperature 1", "temperature 2")[: 2 if two else 1]
        current: int | float | None = None
        if code == 0x57:
            current = self._periodic(frame, content, names, stamped)
        elif code == 0x30:
            if stamped:
                content["timestamp"] = frame.time(6 if two else 4)
            values = [frame.celsius(2 + 2 * index, name) for index, name in enumerate(names)]
            content["temperatures"] = [
                {"name": name, "unit": _CELSIUS, "value": value} for name, value in zip(names, values, strict=True)
            ]
            current = values[0]
        elif code == 0x58:
            alarms = []
            for index, name in enumerate(names):
                start = 2 + 3 * index
                alarm_status = _ALARM_STATUS.get(frame.read(start, 1, f"{name} alarm status"), "none")
                value = frame.celsius(start + 1, name)
                alarms.append(
                    {"name": name, "alarmStatus": alarm_status, "temperature": {"unit": _CELSIUS, "value": value}}
                )
            if stamped:
                content["timestamp"] = frame.time(8 if two else 5)
            content["alarms"] = alarms
            current = alarms[0]["temperature"]["value"]
        elif code == 0x10:
            keep_alive = frame.read(2, 2, "transmissionPeriodKeepAlive")
            historization = frame.read(4, 2, "numberOfHistorizationBeforeSending")
            sampling = frame.read(6, 2, "numberOfSamplingBeforeHistorization")
            period = frame.read(8, 2, "samplingPeriod")
            content["transmissionPeriodKeepAlive"] = {"unit": "s", "value": keep_alive * 10}
            content["numberOfHistorizationBeforeSending"] = historization
            content["numberOfSamplingBeforeHistorization"] = sampling
            content["samplingPeriod"] = {"unit": "s", "value": period * 2}
            content["redundantSamples"] = frame.read(10, 1, "redundantSamples")
            content["calculatedPeriodRecording"] = {"unit": "s", "value": period * sampling * 2}
            content["calculatedSendingPeriod"] = {"unit": "s", "value": period * sampling * historization * 2}
        elif code == 0x20:
            self._network(frame, content, found)
        elif code == 0x2F:
            content["downlinkFramecode"] = "0x" + format(frame.read(2, 1, "downlinkFramecode"), "x")
            content["requestStatus"] = _ACK_STATUS.get(frame.read(3, 1, "requestStatus"), "errorOtherReason")
        elif code == 0x33:
            content["requestStatus"] = _REGISTER_STATUS.get(frame.read(2, 1, "requestStatus"), "errorOtherReason")
            content["registerId"] = frame.read(3, 2, "registerId")
        elif code == 0x36:
            alert = _ALERT_CODES.get(frame.read(2, 1, "alertCode"))
            if alert is not None:  # the codec sets no key for other codes
                content["alertCode"] = alert
        elif code == 0x37:
            parts = [str(frame.read(offset, 1, "version")) for offset in range(2, 8)]
            content["appVersion"] = ".".join(parts[:3])
            content["rtuVersion"] = ".".join(parts[3:])
        found.fields["bytes"] = content
        if status & 0x02:
            found.warnings.append("low battery")
        if current is not None:
            found.direct.append(Measurement(self.quantity, float(current)))

    @staticmethod
    def _periodic(frame: _Frame, content: dict[str, Any], names: tuple[str, ...], stamped: bool) -> int | float | None:
        payload = frame.payload
        end = len(payload) - 4 if stamped else len(payload)
        series: list[list[int | float]] = [[] for _ in names]
        for offset in range(2, end, 2 * len(names)):
            for index, name in enumerate(names):
                series[index].append(frame.celsius(offset + 2 * index, name))
        if stamped:
            # the codec reads the last 4 bytes, even when they overlap the frame code and status byte
            content["timestamp"] = frame.time(len(payload) - 4)
        content["decodingInfo"] = "values: [t=0, t-1, t-2, ...]"
        content["temperatures"] = [
            {"name": name, "unit": _CELSIUS, "values": values} for name, values in zip(names, series, strict=True)
        ]
        return series[0][0] if series[0] else None

    @staticmethod
    def _network(frame: _Frame, content: dict[str, Any], found: Found) -> None:
        payload = frame.payload
        if len(payload) == 4:
            settings = payload[2]
            content["loraAdr"] = bool(settings & 0x01)
            content["loraProvisioningMode"] = "ABP" if payload[3] == 0 else "OTAA"
            # the codec leaves these out for 'temp', not for the 'temp4' it runs as
            content["loraDutycyle"] = "activated" if settings & 0x04 else "deactivated"  # sic
            content["loraClassMode"] = "CLASS C" if settings & 0x20 else "CLASS A"
        elif len(payload) in (3, 5):
            content["sigfoxRetry"] = payload[2] & 0x03
            if len(payload) == 5:
                content["sigfoxDownlinkPeriod"] = {"unit": "m", "value": frame.read(3, 2, "sigfoxDownlinkPeriod", True)}
        else:
            content["partialDecoding"] = _PARTIAL_MISSING_NETWORK
            found.warnings.append(f"0x20 configuration of {len(payload)} bytes: the codec decodes 3, 4 or 5 bytes")

    def write(self, raws: Mapping[str, int]) -> bytes:
        raise NotImplementedError
