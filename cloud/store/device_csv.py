"""The device list a technician gets from a vendor, as CSV: parsed and checked row by row, with limits.

Pure: `parse_device_csv(data)` gives the rows that are well-formed and one `RowError` per problem (row number as a
spreadsheet shows it, column, reason). Whether models and assets exist is the store's question, not this module's.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field

MAX_CSV_BYTES = 1024 * 1024
MAX_CSV_ROWS = 10_000
MAX_FIELD_CHARS = 200
DEFAULT_REPORT_INTERVAL_S = 3600
MAX_REPORT_INTERVAL_S = 7 * 86400

# Header spellings seen in vendor sheets (Dragino, Milesight, TTN exports), compared without case, spaces,
# underscores and hyphens.
COLUMN_ALIASES: dict[str, str] = {
    "deveui": "dev_eui",
    "deviceeui": "dev_eui",
    "model": "model_id",
    "modelid": "model_id",
    "devicemodel": "model_id",
    "asset": "asset",
    "assetid": "asset",
    "appkey": "app_key",
    "joineui": "join_eui",
    "appeui": "join_eui",
    "nwkskey": "nwk_s_key",
    "appskey": "app_s_key",
    "devaddr": "dev_addr",
    "latitude": "latitude",
    "lat": "latitude",
    "longitude": "longitude",
    "lon": "longitude",
    "lng": "longitude",
    "reportintervals": "report_interval_s",
    "reportinterval": "report_interval_s",
    "interval": "report_interval_s",
}
REQUIRED_COLUMNS = ("dev_eui", "model_id", "asset")

_HEX = re.compile(r"^[0-9a-f]*$")
_ASSET_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MODEL_ID = re.compile(r"^[a-z0-9\-]+/[a-z0-9\-]+(@[a-z0-9\-.]+)?$")


class DeviceCsvError(ValueError):
    """The file as a whole cannot be read (too big, not UTF-8, no header, a required column missing)."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceCsvRow:
    row: int
    dev_eui: str
    model_id: str
    asset: str
    report_interval_s: int
    activation: str  # otaa or abp
    keys: dict[str, bytes] = field(default_factory=dict)  # app_key, or nwk_s_key and app_s_key
    join_eui: str | None = None
    dev_addr: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class ParsedDeviceCsv:
    rows: list[DeviceCsvRow]
    errors: list[RowError]
    ignored_columns: list[str]


def _canonical(header: str) -> str:
    compact = re.sub(r"[\s_\-]", "", header.strip().lower())
    return COLUMN_ALIASES.get(compact, "")


def _hex(value: str, digits: int) -> str:
    compact = value.strip().lower().replace("-", "").replace(":", "").replace(" ", "")
    compact = compact.removeprefix("0x")
    if len(compact) != digits or not _HEX.match(compact):
        raise ValueError(f"needs {digits} hex digits, got {value.strip()!r}")
    return compact


def _coordinate(value: str, limit: float) -> float:
    number = float(value.strip().replace(",", "."))  # German sheets write 50,2345
    if not math.isfinite(number) or abs(number) > limit:
        raise ValueError(f"must be a number between -{limit:g} and {limit:g}, got {value.strip()!r}")
    return number


def _decode(data: bytes) -> str:
    if len(data) > MAX_CSV_BYTES:
        raise DeviceCsvError(f"the file has {len(data)} bytes; the limit is {MAX_CSV_BYTES}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DeviceCsvError(f"the file is not UTF-8 (byte {error.start}); save it as CSV UTF-8") from error


def parse_device_csv(data: bytes) -> ParsedDeviceCsv:
    """Rows and per-row errors; raises DeviceCsvError when the file as a whole is unusable."""
    content = _decode(data)
    if "\x00" in content:
        raise DeviceCsvError("the file contains NUL bytes; it is not a CSV text file")
    first_line = content.split("\n", 1)[0]
    # Spreadsheets set to German save with semicolons.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DeviceCsvError("the file is empty; the first row must name the columns") from None
    except csv.Error as error:
        raise DeviceCsvError(f"row 1: {error}") from error
    columns = [_canonical(name) for name in header]
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicated:
        raise DeviceCsvError(f"row 1: column {duplicated[0]} appears more than once")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise DeviceCsvError(f"row 1: required column {missing[0]} is missing (columns needed: dev_eui, model, asset)")
    ignored = [name.strip() for name, canonical in zip(header, columns, strict=True) if not canonical]

    rows: list[DeviceCsvRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    row_number = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            errors.append(RowError(reader.line_num, "", f"not valid CSV: {error}"))
            break
        row_number += 1
        if row_number - 1 > MAX_CSV_ROWS:
            raise DeviceCsvError(f"the file has more than {MAX_CSV_ROWS} devices; split it")
        if not any(value.strip() for value in values):
            continue  # blank lines at the end of spreadsheet exports
        if len(values) != len(header):
            errors.append(RowError(row_number, "", f"has {len(values)} fields, the header has {len(header)}"))
            continue
        cells = {c: v.strip() for c, v in zip(columns, values, strict=True) if c}
        parsed = _parse_row(row_number, cells, errors)
        if parsed is None:
            continue
        if parsed.dev_eui in seen:
            errors.append(RowError(row_number, "dev_eui", f"{parsed.dev_eui} is also in row {seen[parsed.dev_eui]}"))
            continue
        seen[parsed.dev_eui] = row_number
        rows.append(parsed)
    return ParsedDeviceCsv(rows=rows, errors=errors, ignored_columns=ignored)


def _parse_row(row: int, cells: dict[str, str], errors: list[RowError]) -> DeviceCsvRow | None:
    problems: list[RowError] = []

    def take(column: str, parse: object) -> object:
        raw = cells.get(column, "")
        if not raw:
            return None
        if len(raw) > MAX_FIELD_CHARS:
            problems.append(RowError(row, column, f"longer than {MAX_FIELD_CHARS} characters"))
            return None
        try:
            return parse(raw)  # type: ignore[operator]
        except ValueError as error:
            problems.append(RowError(row, column, str(error)))
            return None

    for column in REQUIRED_COLUMNS:
        if not cells.get(column):
            problems.append(RowError(row, column, "is empty"))
    dev_eui = take("dev_eui", lambda v: _hex(v, 16))
    model_id = take("model_id", _model_id)
    asset = take("asset", _asset_id)
    keys: dict[str, bytes] = {}
    for name in ("app_key", "nwk_s_key", "app_s_key"):
        value = take(name, lambda v: _hex(v, 32))
        if isinstance(value, str):
            keys[name] = bytes.fromhex(value)
    join_eui = take("join_eui", lambda v: _hex(v, 16))
    dev_addr = take("dev_addr", lambda v: _hex(v, 8))
    latitude = take("latitude", lambda v: _coordinate(v, 90))
    longitude = take("longitude", lambda v: _coordinate(v, 180))
    interval = take("report_interval_s", _interval)

    activation = "otaa"
    given = {name for name in ("app_key", "nwk_s_key", "app_s_key", "dev_addr") if cells.get(name)}
    if "app_key" in given and given & {"nwk_s_key", "app_s_key", "dev_addr"}:
        problems.append(RowError(row, "app_key", "give either AppKey (OTAA) or NwkSKey, AppSKey and DevAddr (ABP)"))
    elif "app_key" not in given:
        activation = "abp"
        for name in ("nwk_s_key", "app_s_key", "dev_addr"):
            if name not in given:
                problems.append(RowError(row, name, "is empty: a device needs AppKey (OTAA) or all ABP keys"))
                break
    if (latitude is None) != (longitude is None) and not problems:
        problems.append(RowError(row, "latitude" if latitude is None else "longitude", "give both coordinates"))
    if problems:
        errors.extend(problems)
        return None
    return DeviceCsvRow(
        row=row,
        dev_eui=str(dev_eui),
        model_id=str(model_id),
        asset=str(asset),
        report_interval_s=int(interval) if isinstance(interval, int) else DEFAULT_REPORT_INTERVAL_S,  # type: ignore[arg-type]
        activation=activation,
        keys=keys,
        join_eui=join_eui if isinstance(join_eui, str) else None,
        dev_addr=dev_addr if isinstance(dev_addr, str) else None,
        latitude=latitude if isinstance(latitude, float) else None,
        longitude=longitude if isinstance(longitude, float) else None,
    )


def _model_id(value: str) -> str:
    model_id = value.strip().lower()
    if not _MODEL_ID.match(model_id) or len(model_id) > 96:
        raise ValueError(f"must look like vendor/model (e.g. dragino/lse01), got {value.strip()!r}")
    return model_id


def _asset_id(value: str) -> str:
    if not _ASSET_ID.match(value.strip()):
        raise ValueError(f"must be 1-64 letters, digits, '_', '.' or '-', got {value.strip()!r}")
    return value.strip()


def _interval(value: str) -> int:
    if not value.strip().isdigit() or not 0 < int(value) <= MAX_REPORT_INTERVAL_S:
        raise ValueError(f"must be whole seconds between 1 and {MAX_REPORT_INTERVAL_S}, got {value.strip()!r}")
    return int(value)
