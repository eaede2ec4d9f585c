"""Latest state from `record_batch` on SQLite and PostgreSQL, and the ingest's frozen start-up heap."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud import create_app
from cloud.settings import CloudSettings
from cloud.store.operational import OperationalStore
from flurfunk.contracts import Batch, Quantity, Reading

T0 = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)
DEVICES = ("a84041000181c001", "a84041000181c002")
QUANTITIES = (Quantity.FILL_RATIO, Quantity.BATTERY_V)

_readings = st.builds(
    lambda asset, quantity, device, minute, value, flagged: Reading(
        device=device,
        asset=asset,
        quantity=quantity,
        value=value,
        time=T0 + timedelta(minutes=minute),
        flags=("emptied",) if flagged else (),
    ),
    st.sampled_from(("bin-1", "bin-2", "tree-1")),
    st.sampled_from(QUANTITIES),
    st.sampled_from(DEVICES),
    st.integers(0, 5),  # few distinct times: ties within and across batches are common
    st.floats(0, 1, allow_nan=False),
    st.booleans(),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OperationalStore]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/op.db"
    operational = OperationalStore.from_url(url)
    operational.create_schema()
    yield operational
    operational.engine.dispose()


def clear(store: OperationalStore) -> None:
    from sqlalchemy import text

    with store.write_session() as session, session.begin():
        session.execute(text("DELETE FROM latest_state"))
        session.execute(text("DELETE FROM gateways"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_readings, min_size=1, max_size=12), min_size=1, max_size=5))
def test_latest_state_is_the_last_posted_reading_of_the_newest_time(
    store: OperationalStore, batches: list[list[Reading]]
) -> None:
    clear(store)
    expected: dict[tuple[str, Quantity], Reading] = {}
    for seq, readings in enumerate(batches, start=1):
        batch = Batch(gateway_id="gw-1", first_seq=seq, last_seq=seq, sent_at=T0, readings=tuple(readings))
        store.record_batch(batch, received_at=T0)
        for reading in readings:  # a reading of the same time replaces the value, as in the series store
            key = (reading.asset, reading.quantity)
            if key not in expected or reading.time >= expected[key].time:
                expected[key] = reading
    latest = store.latest()
    stored = {(asset, quantity): state for asset, states in latest.items() for quantity, state in states.items()}
    assert set(stored) == set(expected)
    for key, reading in expected.items():
        state = stored[key]
        assert (state.time, state.value, state.device, state.flags) == (
            reading.time,
            reading.value,
            reading.device,
            reading.flags,
        )
    (gateway,) = store.gateways()
    assert gateway.acked_seq == len(batches)


def test_a_replayed_older_batch_leaves_newer_state_and_the_acked_sequence_alone(store: OperationalStore) -> None:
    clear(store)
    older = Reading(device=DEVICES[0], asset="bin-1", quantity=Quantity.FILL_RATIO, value=0.2, time=T0)
    newer = older.model_copy(update={"value": 0.7, "time": T0 + timedelta(hours=1)})
    store.record_batch(Batch(gateway_id="gw-1", first_seq=1, last_seq=2, sent_at=T0, readings=(newer,)), T0)
    unknown = store.record_batch(Batch(gateway_id="gw-1", first_seq=1, last_seq=1, sent_at=T0, readings=(older,)), T0)
    assert unknown == ["bin-1"]  # no such asset in the inventory; its state is kept all the same
    assert store.latest()["bin-1"][Quantity.FILL_RATIO].value == 0.7
    assert store.gateways()[0].acked_seq == 2


def test_the_start_up_heap_is_frozen_while_the_app_serves(tmp_path: Path) -> None:
    app = create_app(CloudSettings(data_dir=tmp_path))
    before = gc.get_freeze_count()  # 0 unless another app is serving in this process
    with TestClient(app):
        assert gc.get_freeze_count() > before  # SQLAlchemy, pydantic, FastAPI and the app itself
    assert gc.get_freeze_count() == 0  # unfrozen at shutdown: a later app's garbage is collected again


def test_sqlite_latest_state_is_stored_in_sqlalchemys_own_format(tmp_path: Path) -> None:
    """The SQLite upsert goes through the driver; what it stores must read back exactly as the ORM writes it."""
    import sqlite3

    store = OperationalStore.from_url(f"sqlite:///{tmp_path / 'op.sqlite'}")
    store.create_schema()
    moment = datetime(2026, 7, 1, 12, 0, 0, 250, tzinfo=UTC)
    reading = Reading(
        device="0011223344556677", asset="bin-1", quantity=Quantity.FILL_RATIO, value=0.5, time=moment, flags=("x_y",)
    )
    store.record_batch(Batch(gateway_id="gw-1", first_seq=1, last_seq=1, sent_at=moment, readings=(reading,)), moment)
    raw = sqlite3.connect(tmp_path / "op.sqlite").execute("SELECT time, flags FROM latest_state").fetchone()
    assert raw == ("2026-07-01 12:00:00.000250", '["x_y"]')
    latest = store.latest()["bin-1"][Quantity.FILL_RATIO]
    assert latest.time == moment and latest.value == 0.5 and tuple(latest.flags) == ("x_y",)
