"""Hypothesis strategies for the contracts, shared by the property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from flurfunk.contracts import (
    Alert,
    AlertState,
    Asset,
    AssetKind,
    Batch,
    Delivery,
    Depot,
    Device,
    GatewayStatus,
    Quantity,
    Reading,
    RxInfo,
    Severity,
    Task,
    TaskKind,
    TaskState,
    Uplink,
)

eui64 = st.binary(min_size=8, max_size=8).map(bytes.hex)
identifiers = st.from_regex(r"[A-Za-z0-9_.\-]{1,40}", fullmatch=True)
names = st.text(min_size=1, max_size=40).filter(str.strip)
utc_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
flag_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)


def rx_infos() -> st.SearchStrategy[RxInfo]:
    return st.builds(
        RxInfo,
        gateway_id=eui64,
        rssi=st.integers(-200, 50),
        snr=st.floats(-40, 40),
        frequency_hz=st.integers(863_000_000, 870_000_000),
        data_rate=st.sampled_from(["SF7BW125", "SF9BW125", "SF12BW125"]),
    )


def uplinks() -> st.SearchStrategy[Uplink]:
    return st.builds(
        Uplink,
        dev_eui=eui64,
        f_port=st.integers(1, 255),
        f_cnt=st.integers(0, 2**32 - 1),
        payload=st.binary(max_size=255),
        received_at=utc_times,
        rx=st.lists(rx_infos(), max_size=3).map(tuple),
        source=st.sampled_from(["semtech_udp", "chirpstack", "tts", "simulator"]),
    )


def readings() -> st.SearchStrategy[Reading]:
    return st.builds(
        Reading,
        device=eui64,
        asset=identifiers,
        quantity=st.sampled_from(list(Quantity)),
        value=finite,
        time=utc_times,
        anomaly_score=st.floats(0, 1e6),
        flags=st.lists(flag_names, max_size=3).map(tuple),
    )


def batches() -> st.SearchStrategy[Batch]:
    return st.integers(1, 2**40).flatmap(
        lambda first: st.builds(
            Batch,
            gateway_id=identifiers,
            first_seq=st.just(first),
            last_seq=st.integers(first, first + 10_000),
            sent_at=utc_times,
            readings=st.lists(readings(), max_size=20).map(tuple),
            status=st.none()
            | st.builds(
                GatewayStatus,
                buffered=st.integers(0, 10**9),
                oldest_unsynced_s=st.floats(0, 1e9),
                dropped=st.dictionaries(flag_names, st.integers(0, 10**6), max_size=3),
                model_version=st.none() | identifiers,
            ),
        )
    )


def tasks() -> st.SearchStrategy[Task]:
    def build(start: datetime, hours: int, state: TaskState, **rest: object) -> Task:
        return Task(
            due_from=start,
            due_until=start + timedelta(hours=hours),
            state=state,
            skip_reason="Zufahrt blockiert" if state is TaskState.SKIPPED else None,
            **rest,
        )

    return st.builds(
        build,
        start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)),
        hours=st.integers(0, 72),
        state=st.sampled_from(list(TaskState)),
        id=identifiers,
        kind=st.sampled_from(list(TaskKind)),
        asset=identifiers,
        municipality=names,
        priority=st.integers(0, 100),
        reason=names,
        evidence=st.dictionaries(identifiers, finite | names, max_size=4),
        route_id=st.none() | identifiers,
        crew=st.none() | names,
    )


def alerts() -> st.SearchStrategy[Alert]:
    return st.builds(
        lambda first, span, **rest: Alert(first_seen=first, last_seen=first + timedelta(seconds=span), **rest),
        first=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)),
        span=st.integers(0, 10**7),
        id=identifiers,
        rule=identifiers,
        severity=st.sampled_from(list(Severity)),
        subject=names,
        municipality=names,
        count=st.integers(1, 10**6),
        state=st.sampled_from(list(AlertState)),
        deliveries=st.lists(
            st.builds(Delivery, channel=identifiers, at=utc_times, ok=st.booleans(), detail=st.text(max_size=50)),
            max_size=3,
        ).map(tuple),
    )


def assets() -> st.SearchStrategy[Asset]:
    return st.builds(
        Asset,
        id=identifiers,
        kind=st.sampled_from(list(AssetKind)),
        municipality=names,
        village=names,
        latitude=st.floats(-90, 90),
        longitude=st.floats(-180, 180),
        capacity_l=st.none() | st.integers(1, 5000),
        waste_type=st.none() | st.sampled_from(["residual", "paper", "organic", "glass"]),
        sensor_to_bottom_m=st.none() | st.floats(0.1, 3),
        sensor_to_full_m=st.none() | st.floats(0, 0.5),
        species=st.none() | names,
        planting_year=st.none() | st.integers(1800, 2200),
    )


def devices() -> st.SearchStrategy[Device]:
    return st.builds(
        Device,
        dev_eui=eui64,
        model_id=st.sampled_from(["dragino/lse01", "milesight-iot/em310-udl", "dragino/lse01@lse01-121"]),
        asset=identifiers,
        report_interval_s=st.integers(1, 7 * 86400),
    )


def depots() -> st.SearchStrategy[Depot]:
    return st.builds(Depot, municipality=names, name=names, latitude=st.floats(-90, 90), longitude=st.floats(-180, 180))
