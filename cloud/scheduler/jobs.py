"""The planning clock: APScheduler runs each town's daily plan (at `plan_time`, Europe/Berlin) and intraday replans,
with its jobs in the operational database (SQLAlchemyJobStore), so a restart neither loses nor doubles them.

One leader: with several API replicas only one may run the jobs. On PostgreSQL the replica holding a session-level
advisory lock (`LEADER_LOCK_KEY`) is the leader; the others try again every `LEADER_RETRY_S` and take over when its
connection ends. On SQLite (one process by design) the lock is skipped; set `scheduler_enabled` on one replica only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Engine, text

logger = logging.getLogger("cloud.scheduler.jobs")

TOWN_ZONE = ZoneInfo("Europe/Berlin")
WORKDAY = (time(6, 0), time(15, 0))  # intraday replans only while crews are out
LEADER_LOCK_KEY = 0x464C5552  # "FLUR": the advisory lock id every Flurfunk replica asks for
LEADER_RETRY_S = 30.0
JOB_TABLE = "apscheduler_jobs"

# (day, municipality, replan) -> anything; the app passes a function that plans and stores that town's day.
PlanTown = Callable[[date, str, bool], Any]

# The running scheduler of this process: jobs in the persistent store name `run_plan_job` by its import path,
# and that function finds the app's planner here (a stored job cannot hold a live object).
_active: PlanClock | None = None


def run_plan_job(municipality: str, replan: bool = False) -> None:
    """The job APScheduler calls: plan today (Berlin) for one town; intraday replans only during working hours."""
    clock = _active
    if clock is None:
        logger.warning("plan job for %s fired with no active scheduler in this process", municipality)
        return
    clock.run(municipality, replan=replan)


class PlanClock:
    """APScheduler with a persistent job store on `engine`: one daily plan per town, optional intraday replans."""

    def __init__(
        self,
        engine: Engine,
        plan_town: PlanTown,
        municipalities: Iterable[str],
        plan_time: str = "05:00",
        plan_times: dict[str, str] | None = None,
        replan_every_minutes: int = 120,
        use_leader_lock: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(TOWN_ZONE),
    ) -> None:
        self.engine = engine
        self.plan_town = plan_town
        self.municipalities = sorted(municipalities)
        self.plan_time = plan_time
        self.plan_times = dict(plan_times or {})
        self.replan_every_minutes = replan_every_minutes
        self.use_leader_lock = use_leader_lock and engine.dialect.name == "postgresql"
        self.now = now
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
            executors={"default": ThreadPoolExecutor(1)},  # plans one town at a time: the database is shared
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=TOWN_ZONE,
        )
        self._lock_connection: Connection | None = None
        self._stop = threading.Event()
        self._waiter: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self.scheduler.running

    def start(self) -> None:
        """Start now if this replica is the leader, else keep trying in the background."""
        global _active
        _active = self
        if self._become_leader():
            return
        logger.info("another replica runs the scheduler; retrying every %.0f s", LEADER_RETRY_S)
        self._waiter = threading.Thread(target=self._wait_for_leadership, name="plan-clock-leader", daemon=True)
        self._waiter.start()

    def shutdown(self) -> None:
        global _active
        self._stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._lock_connection is not None:
            # Invalidate, not just close: a pooled connection would keep the session, and with it the lock.
            self._lock_connection.invalidate()
            self._lock_connection.close()
            self._lock_connection = None
        if _active is self:
            _active = None

    def run(self, municipality: str, *, replan: bool) -> Any:
        local = self.now()
        if replan and not WORKDAY[0] <= local.time() < WORKDAY[1]:
            return None
        logger.info("%s day=%s municipality=%s", "replan" if replan else "daily plan", local.date(), municipality)
        try:
            return self.plan_town(local.date(), municipality, replan)
        except Exception:
            # A failed plan must not stop the clock: the next run tries again, and the log says why.
            logger.exception("plan failed municipality=%s", municipality)
            return None

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

    # -- inside -----------------------------------------------------------------------------------------------------

    def _become_leader(self) -> bool:
        if self.use_leader_lock and not self._take_lock():
            return False
        self.scheduler.start()
        self._schedule()
        logger.info("scheduler started jobs=%s", ",".join(self.job_ids()))
        return True

    def _take_lock(self) -> bool:
        connection = self.engine.connect()
        try:
            held = bool(
                connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}).scalar()
            )
            connection.commit()
        except Exception:
            connection.close()
            raise
        if not held:
            connection.close()
            return False
        self._lock_connection = connection
        return True

    def _wait_for_leadership(self) -> None:
        while not self._stop.wait(LEADER_RETRY_S):
            try:
                if self._become_leader():
                    return
            except Exception:
                logger.exception("could not take the scheduler lock")

    def _schedule(self) -> None:
        """(Re)write every town's jobs: replace_existing keeps one job per id across restarts and setting changes."""
        wanted: set[str] = set()
        for town in self.municipalities:
            hour, minute = (int(part) for part in self.plan_times.get(town, self.plan_time).split(":"))
            daily = f"daily-plan:{town}"
            self.scheduler.add_job(
                "cloud.scheduler.jobs:run_plan_job",
                CronTrigger(hour=hour, minute=minute, timezone=TOWN_ZONE),
                args=[town, False],
                id=daily,
                name=f"daily plan {town}",
                replace_existing=True,
            )
            wanted.add(daily)
            if self.replan_every_minutes > 0:
                replan = f"replan:{town}"
                self.scheduler.add_job(
                    "cloud.scheduler.jobs:run_plan_job",
                    IntervalTrigger(minutes=self.replan_every_minutes, timezone=TOWN_ZONE),
                    args=[town, True],
                    id=replan,
                    name=f"intraday replan {town}",
                    replace_existing=True,
                )
                wanted.add(replan)
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()  # a town left, or replans were switched off
