"""The planning clock (APScheduler): daily plans per town at their time in Europe/Berlin and intraday replans, kept
in the operational database; one leader among replicas on PostgreSQL; started by create_app when enabled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from cloud.scheduler import jobs
from cloud.scheduler.jobs import PlanClock
from cloud.store.operational import OperationalStore
from tests.cloud_helpers import cloud_client, empty_postgres_schema

BERLIN = ZoneInfo("Europe/Berlin")


def sqlite_store(tmp_path: Path) -> OperationalStore:
    store = OperationalStore.from_url(f"sqlite:///{tmp_path / 'operational.sqlite'}")
    store.create_schema()
    return store


def stored_job_ids(store: OperationalStore) -> list[str]:
    with store.engine.connect() as connection:
        return sorted(connection.execute(text("SELECT id FROM apscheduler_jobs")).scalars())


def test_jobs_are_stored_per_town_and_rewritten_when_settings_change(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    calls: list[tuple[date, str, bool]] = []
    clock = PlanClock(
        store.engine,
        lambda day, town, replan: calls.append((day, town, replan)),
        ["Birstein", "Bad Orb"],
        plan_time="05:00",
        plan_times={"Bad Orb": "04:30"},
        replan_every_minutes=60,
    )
    clock.start()
    try:
        assert stored_job_ids(store) == [
            "daily-plan:Bad Orb",
            "daily-plan:Birstein",
            "replan:Bad Orb",
            "replan:Birstein",
        ]
        orb = clock.scheduler.get_job("daily-plan:Bad Orb")
        next_run = orb.next_run_time.astimezone(BERLIN)
        assert (next_run.hour, next_run.minute) == (4, 30)
    finally:
        clock.shutdown()
    assert stored_job_ids(store) == ["daily-plan:Bad Orb", "daily-plan:Birstein", "replan:Bad Orb", "replan:Birstein"]

    again = PlanClock(store.engine, lambda *args: None, ["Birstein"], replan_every_minutes=0)
    again.start()
    try:
        assert stored_job_ids(store) == ["daily-plan:Birstein"]  # a town that left and switched-off replans go
    finally:
        again.shutdown()
    store.engine.dispose()


def test_replans_run_only_in_working_hours_and_failures_do_not_stop_the_clock(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    calls: list[tuple[date, str, bool]] = []
    moment = {"now": datetime(2026, 7, 7, 10, 0, tzinfo=BERLIN)}

    def plan_town(day: date, town: str, replan: bool) -> str:
        if town == "Sinntal":
            raise RuntimeError("no depot")
        calls.append((day, town, replan))
        return "planned"

    clock = PlanClock(store.engine, plan_town, ["Birstein"], now=lambda: moment["now"])
    clock.start()
    try:
        jobs.run_plan_job("Birstein", True)  # as APScheduler calls it: through the module, by town
        moment["now"] = datetime(2026, 7, 7, 20, 0, tzinfo=BERLIN)
        assert clock.run("Birstein", replan=True) is None  # crews are home: no replan
        assert clock.run("Birstein", replan=False) == "planned"  # the daily plan runs whenever it is due
        assert clock.run("Sinntal", replan=False) is None  # logged, and the next town still plans
    finally:
        clock.shutdown()
    assert calls == [(date(2026, 7, 7), "Birstein", True), (date(2026, 7, 7), "Birstein", False)]
    assert jobs._active is None
    store.engine.dispose()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[OperationalStore]:
    with empty_postgres_schema(postgres_url, "jobs") as database_url:
        store = OperationalStore.from_url(database_url)
        store.create_schema()
        try:
            yield store
        finally:
            store.engine.dispose()


@pytest.mark.integration
def test_only_one_replica_runs_the_scheduler_on_postgresql(postgres_store: OperationalStore, monkeypatch: Any) -> None:
    monkeypatch.setattr(jobs, "LEADER_RETRY_S", 3600.0)  # the test hands leadership over by hand
    first = PlanClock(postgres_store.engine, lambda *args: None, ["Birstein"])
    second = PlanClock(postgres_store.engine, lambda *args: None, ["Birstein"])
    first.start()
    try:
        second.start()
        assert first.is_leader and not second.is_leader
        first.shutdown()  # closing its connection releases the advisory lock
        assert second._become_leader()
        assert second.is_leader
    finally:
        first.shutdown()
        second.shutdown()


def test_create_app_starts_the_clock_only_when_enabled(tmp_path: Path) -> None:
    with cloud_client(tmp_path / "off") as client:
        assert jobs._active is None
        assert client.get("/healthz").status_code == 200
    with cloud_client(tmp_path / "on", scheduler_enabled=True, plan_time="04:15") as client:
        clock = jobs._active
        assert clock is not None and clock.is_leader
        assert "daily-plan:Birstein" in clock.job_ids() and len(clock.job_ids()) == 12  # six towns, two jobs each
        store = client.app.state.cloud.store  # type: ignore[attr-defined]
        before = store.last_task_event_id()
        clock.run("Birstein", replan=False)  # the real planner through the API's plan(): no data, no tasks
        assert [e.action for e in store.task_events(before)] == ["planned"]
    assert jobs._active is None
