"""`flurfunk demo`: the whole data path on embedded defaults, in simulated time.

Virtual sensors emit the real payload bytes of real device models; one gateway pipeline per town decodes them
into its durable SQLite buffer and syncs CBOR batches over real HTTP to the cloud app (uvicorn on localhost),
which stores them in SQLite, plans collection and watering tasks with a route per town each morning and serves
the task feed. Virtual crews carry the tasks out, so emptied bins and watered trees show up in the next readings.
This module is the composition root: the only place that imports every package.
"""

from __future__ import annotations

import secrets
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edge.sim import Simulation, World
from flurfunk.contracts import MUNICIPALITIES, Asset, AssetKind, Quantity, TaskKind, Uplink
from flurfunk.i18n import Language, text

LOCAL_TIME = ZoneInfo("Europe/Berlin")
PLAN_HOUR = 5  # the dispatcher plans the day before the crews start
WORK_HOUR = 10  # the crews have done the day's tasks by then
SYNC_EVERY_HOURS = 3  # the gateways send what they buffered every three hours, and right before the plan
# The sensors report this many days before the first plan, as a deployment has history when it starts planning:
# the fill forecasts need 3 days of a bin and the water balance 3 weather days (cloud.scheduler.inputs).
HISTORY_DAYS = 3
GATEWAY_BUFFER_QUOTA_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class DemoOptions:
    days: int = 7
    seed: int = 1
    start: date = date(2026, 7, 6)
    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 8470
    data_dir: str | None = None
    language: Language = "de"
    edge_model: bool = False  # the learned anomaly model on the gateways, besides the rules (slower)
    history_days: int = HISTORY_DAYS  # sensor days before `start`: nothing is planned or counted in them


@dataclass
class DemoSummary:
    """Everything the demo reports; deterministic for a seed (no wall-clock figures)."""

    days: int
    seed: int
    history_days: int = 0
    uplinks: int = 0
    readings_buffered: int = 0
    readings_stored: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    tasks: Counter[tuple[str, str]] = field(default_factory=Counter)  # (municipality, kind) -> count
    planned_by: Counter[str] = field(default_factory=Counter)  # forecast, water_balance, latest_value -> tasks
    km_planned: float = 0.0
    km_fixed: float = 0.0
    overflow_bin_hours: int = 0
    overflow_bin_hours_fixed: int = 0
    water_l: Counter[str] = field(default_factory=Counter)  # by asset kind: tree, green_space
    water_l_fixed: Counter[str] = field(default_factory=Counter)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serve_cloud(app: object, host: str, port: int) -> Iterator[str]:
    """Run the cloud app under uvicorn in a thread: the gateways talk to it over real HTTP."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="cloud", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the cloud app did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _local_hour(moment: datetime) -> int:
    return moment.astimezone(LOCAL_TIME).hour


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="flurfunk-demo-") as scratch:
        data_dir = Path(options.data_dir) if options.data_dir else Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        return _run(options, data_dir, console)


def _run(options: DemoOptions, data_dir: Path, console: Console) -> int:
    import decoders
    from cloud import create_app
    from cloud.settings import CloudSettings
    from edge.anomaly import AnomalyScorer, default_scorer
    from edge.sim import build_world
    from gateway.buffer import DurableBuffer
    from gateway.pipeline import DeviceBinding, Pipeline
    from gateway.sync import SyncClient

    world = build_world(options.seed)
    start = datetime.combine(options.start, datetime.min.time(), LOCAL_TIME).astimezone(UTC)
    history_start = start - timedelta(days=options.history_days)
    simulation = Simulation(world, options.seed, history_start, decoders.encode_quantities)

    gateway_tokens = {site.id: secrets.token_urlsafe(24) for site in world.gateways}
    admin_token = secrets.token_urlsafe(24)
    settings = CloudSettings(
        database_url=f"sqlite:///{data_dir / 'cloud.sqlite'}",
        series_url=f"sqlite:///{data_dir / 'series.sqlite'}",
        gateway_tokens=gateway_tokens,
        admin_token=admin_token,
        open_read=True,
        language=options.language,
    )
    port = options.port or _free_port(options.host)
    summary = DemoSummary(days=options.days, seed=options.seed, history_days=options.history_days)
    assets_by_id: dict[str, Asset] = {asset.id: asset for asset in world.assets}

    with _serve_cloud(create_app(settings), options.host, port) as base_url:
        admin = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60)
        response = admin.post(
            "/api/v1/admin/inventory",
            json={
                "depots": [d.model_dump(mode="json") for d in world.depots],
                "assets": [a.model_dump(mode="json") for a in world.assets],
                "devices": [d.model_dump(mode="json") for d in world.devices],
            },
        )
        response.raise_for_status()

        site_by_eui = {site.eui: site for site in world.gateways}
        pipelines: dict[str, Pipeline] = {}
        syncers: dict[str, SyncClient] = {}
        buffers: list[DurableBuffer] = []
        bindings = {d.dev_eui: DeviceBinding(device=d, asset=assets_by_id[d.asset]) for d in world.devices}
        simulated_now = [start]  # the gateways' clock is the simulation's, not the wall clock
        for site in world.gateways:
            buffer = DurableBuffer(data_dir / f"{site.id}.buffer.sqlite", quota_bytes=GATEWAY_BUFFER_QUOTA_BYTES)
            buffers.append(buffer)
            scorer = default_scorer() if options.edge_model else AnomalyScorer(None)
            pipeline = Pipeline(site.id, bindings, buffer, clock=lambda: simulated_now[0], scorer=scorer)
            pipelines[site.id] = pipeline
            syncers[site.id] = SyncClient(
                base_url,
                gateway_tokens[site.id],
                site.id,
                buffer,
                dropped_counts=lambda p=pipeline: p.dropped_totals,
                model_version=pipeline.model_version,
            )

        history_hours, hours = options.history_days * 24, options.days * 24
        overflow_before_start = 0
        planned_days: set[date] = set()
        executed_days: set[date] = set()
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("simulated hours"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        with progress:
            bar = progress.add_task("Flurfunk-Demo", total=history_hours + hours)
            for hour in range(1 - history_hours, hours + 1):
                moment = start + timedelta(hours=hour)
                if hour == 1:  # the history's overflows are the same on both sides: count from the start on
                    overflow_before_start = simulation.overflowed_bin_hours
                simulated_now[0] = moment
                uplinks = simulation.advance(moment)
                summary.uplinks += len(uplinks)
                by_site: dict[str, list[Uplink]] = {}
                for uplink in uplinks:
                    by_site.setdefault(site_by_eui[uplink.rx[0].gateway_id].id, []).append(uplink)
                for site_id, site_uplinks in sorted(by_site.items()):
                    report = pipelines[site_id].handle_many(site_uplinks)
                    summary.readings_buffered += report.readings
                    summary.dropped.update(report.dropped)
                if hour % SYNC_EVERY_HOURS == 0 or _local_hour(moment) == PLAN_HOUR:
                    for site_id in sorted(syncers):
                        syncers[site_id].sync_until_drained(moment)

                day = moment.astimezone(LOCAL_TIME).date()
                if day < options.start:
                    progress.advance(bar)
                    continue
                if _local_hour(moment) == PLAN_HOUR and day not in planned_days:
                    admin.post(f"/api/v1/plan/{day.isoformat()}").raise_for_status()
                    planned_days.add(day)
                if _local_hour(moment) == WORK_HOUR and day in planned_days and day not in executed_days:
                    summary.water_l.update(_carry_out_tasks(admin, simulation, day, moment, assets_by_id))
                    executed_days.add(day)
                progress.advance(bar)

        for site_id in sorted(syncers):
            syncers[site_id].sync_until_drained(start + timedelta(hours=hours))
        cloud_summary = admin.get("/api/v1/summary").json()
        summary.readings_stored = int(cloud_summary["readings_stored"])
        tasks = admin.get("/api/v1/feed/tasks").json()
        summary.tasks = Counter((task["municipality"], task["kind"]) for task in tasks)
        routes = admin.get("/api/v1/feed/routes").json()
        summary.km_planned = round(sum(route["km"] for route in routes), 1)
        summary.planned_by = Counter(
            str(task["evidence"].get("planned_by")) for task in tasks if "planned_by" in task["evidence"]
        )
        summary.overflow_bin_hours = simulation.overflowed_bin_hours - overflow_before_start
        fixed = _fixed_rounds(world, options, start, settings.town_planning_file)
        summary.km_fixed = round(fixed.km, 1)
        summary.overflow_bin_hours_fixed, summary.water_l_fixed = fixed.overflow_bin_hours, fixed.water_l
        _print_summary(console, summary, options.language)

        if options.serve:
            console.print(
                f"\n{_t(options.language, 'Task-Feed', 'Task feed')}: {base_url}/api/v1/feed/tasks   "
                f"{_t(options.language, 'Disposition', 'Dispatch')}: {base_url}/   "
                f"{_t(options.language, 'Beenden mit Strg-C', 'Stop with Ctrl-C')}"
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                console.print(_t(options.language, "Beendet.", "Stopped."))
        for buffer in buffers:
            buffer.close()
        admin.close()
    return 0


def _carry_out_tasks(
    admin: httpx.Client, simulation: Simulation, day: date, moment: datetime, assets: dict[str, Asset]
) -> Counter[str]:
    """The crews work through the day's planned tasks: bins emptied, trees watered, each marked done.
    Returns the litres of water given by asset kind."""
    tasks = admin.get("/api/v1/feed/tasks", params={"day": day.isoformat(), "state": "planned"}).json()
    litres_given: Counter[str] = Counter()
    for task in sorted(tasks, key=lambda t: t["id"]):
        if task["kind"] == TaskKind.COLLECT:
            simulation.empty_bin(task["asset"], moment)
        elif task["kind"] == TaskKind.WATER:
            litres = float(task["evidence"].get("litres", 0.0))
            simulation.water(task["asset"], litres, moment)
            litres_given[assets[task["asset"]].kind.value] += litres
        for state in ("assigned", "in_progress", "done"):
            admin.patch(f"/api/v1/tasks/{task['id']}", json={"state": state}).raise_for_status()
    return litres_given


def _fixed_rounds(world: World, options: DemoOptions, start: datetime, planning_file: Path | None) -> FixedRounds:
    """What the towns' fixed rounds would have left behind in the same weeks: the same virtual towns (same seed),
    every bin of a town emptied once a week on the town's day, every tree and green space watered once a week
    from May to September. Each round is routed by the same planner with the same vehicles as Flurfunk's plans
    (the towns' planning file: a truck per waste type, trips to the waste centre when full), so the km compare."""
    from cloud.scheduler import LatestValue, PlanSettings, plan_day, watering_litres
    from cloud.scheduler.fleet import plan_day_arguments
    from cloud.scheduler.planning import WATERING_SEASON_MONTHS

    settings = PlanSettings()
    fleet = plan_day_arguments(planning_file).get("fleet")
    # Every asset handed to the planner is due: any fill and any soil moisture is "collect" and "water".
    everything_due = PlanSettings(
        collection_weekdays=tuple(range(7)),
        collect_threshold=1e-6,
        collect_opportunistic=1e-6,
        overflow_threshold=1e-6,
        dry_soil_vwc=1.0,
    )
    km = 0.0
    simulation = Simulation(
        world, options.seed, start - timedelta(days=options.history_days), lambda model_id, values: (1, b"")
    )
    simulation.advance(start)  # the same sensor days before the start as Flurfunk's run, nobody working
    overflow_before_start = simulation.overflowed_bin_hours
    assets_by_town: dict[str, list[Asset]] = {}
    for asset in world.assets:
        assets_by_town.setdefault(asset.municipality, []).append(asset)
    towns = sorted(assets_by_town)
    litres_given: Counter[str] = Counter()
    for offset in range(options.days):
        day = options.start + timedelta(days=offset)
        work_time = datetime.combine(day, datetime.min.time(), LOCAL_TIME).replace(hour=WORK_HOUR).astimezone(UTC)
        simulation.advance(work_time)
        for turn, town in enumerate(towns):
            town_assets = assets_by_town[town]
            due: list[Asset] = []
            if (offset - turn) % settings.fixed_collection_interval_days == 0:
                due += [asset for asset in town_assets if asset.kind is AssetKind.BIN]
            watering_round = (offset - turn) % settings.fixed_watering_interval_days == 0
            if watering_round and day.month in WATERING_SEASON_MONTHS:
                due += [asset for asset in town_assets if asset.kind in (AssetKind.TREE, AssetKind.GREEN_SPACE)]
            if not due:
                continue
            # The true fill sets each stop's load (a half-full bin fills half as much of the truck).
            latest = {
                asset.id: {Quantity.FILL_RATIO: LatestValue(max(simulation.fill_ratio(asset.id), 1e-3), work_time)}
                if asset.kind is AssetKind.BIN
                else {Quantity.SOIL_VWC: LatestValue(simulation.soil_vwc(asset.id), work_time)}
                for asset in due
            }
            plan = plan_day(day, world.depots, due, latest, everything_due, as_of=work_time, fleet=fleet)
            km += sum(route.km for route in plan.routes)
            for asset in due:
                if asset.kind is AssetKind.BIN:
                    simulation.empty_bin(asset.id, work_time)
                else:
                    litres = watering_litres(asset, day)
                    simulation.water(asset.id, litres, work_time)
                    litres_given[asset.kind.value] += litres
    simulation.advance(start + timedelta(days=options.days))
    return FixedRounds(km, simulation.overflowed_bin_hours - overflow_before_start, litres_given)


@dataclass(frozen=True)
class FixedRounds:
    km: float
    overflow_bin_hours: int
    water_l: Counter[str]  # by asset kind


def _t(language: Language, german: str, english: str) -> str:
    return german if language == "de" else english


def _day_word(days: int, language: Language) -> str:
    if language == "de":
        return "Tag" if days == 1 else "Tage"
    return "day" if days == 1 else "days"


def _count(value: float, language: Language) -> str:
    """A whole number with the language's thousands separator (German 90.720, English 90,720)."""
    grouped = f"{value:,.0f}"
    return grouped.replace(",", ".") if language == "de" else grouped


def _print_summary(console: Console, summary: DemoSummary, language: Language) -> None:
    de = language == "de"
    console.print(
        f"[bold]{_t(language, 'Flurfunk-Demo', 'Flurfunk demo')}[/bold] — "
        f"{summary.days} {_day_word(summary.days, language)}, seed {summary.seed} "
        f"({_t(language, 'Sensoren schon', 'sensors from')} {summary.history_days} "
        f"{_t(language, 'Tage vorher', 'days before')})"
    )
    console.print(f"{_t(language, 'Uplinks empfangen', 'Uplinks received')}: {_count(summary.uplinks, language)}")
    buffered, stored = _count(summary.readings_buffered, language), _count(summary.readings_stored, language)
    console.print(
        f"{_t(language, 'Messwerte gepuffert', 'Readings buffered')}: {buffered}, "
        f"{_t(language, 'in der Cloud gespeichert', 'stored in the cloud')}: {stored}"
    )
    if summary.dropped:
        dropped = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.dropped.items()))
        console.print(f"{_t(language, 'Verworfen', 'Dropped')}: {dropped}")
    kinds = [TaskKind.COLLECT, TaskKind.WATER, TaskKind.INSPECT]
    table = Table(title=_t(language, "Aufgaben je Gemeinde", "Tasks by municipality"))
    table.add_column(_t(language, "Gemeinde", "Municipality"))
    for kind in kinds:
        table.add_column(text(f"task.kind.{kind.value}", "de" if de else "en"), justify="right")
    for municipality in MUNICIPALITIES:
        table.add_row(municipality, *(str(summary.tasks.get((municipality, kind.value), 0)) for kind in kinds))
    table.add_row(
        _t(language, "Summe", "Total"),
        *(str(sum(n for (_, k), n in summary.tasks.items() if k == kind.value)) for kind in kinds),
    )
    console.print(table)
    if summary.planned_by:
        bases = [
            (_t(language, "Füllstandsprognose", "fill forecast"), summary.planned_by.get("forecast", 0)),
            (_t(language, "Wasserbilanz", "water balance"), summary.planned_by.get("water_balance", 0)),
            (_t(language, "aktueller Messwert", "latest reading"), summary.planned_by.get("latest_value", 0)),
        ]
        console.print(
            f"{_t(language, 'Geplant nach', 'Planned by')}: " + ", ".join(f"{label} {count}" for label, count in bases)
        )
    comparison = Table(
        title=_t(language, "Flurfunk gegenüber festen Wochentouren", "Flurfunk versus fixed weekly rounds")
    )
    comparison.add_column("")
    comparison.add_column("Flurfunk", justify="right")
    comparison.add_column(_t(language, "feste Touren", "fixed rounds"), justify="right")
    comparison.add_column(_t(language, "Änderung", "change"), justify="right")
    rows = [
        (_t(language, "Strecke (km)", "Route km"), summary.km_planned, summary.km_fixed),
        (
            _t(language, "Stunden mit überfülltem Behälter", "Bin-hours overflowing"),
            summary.overflow_bin_hours,
            summary.overflow_bin_hours_fixed,
        ),
        (
            _t(language, "Wasser Bäume (Liter)", "Water for trees (litres)"),
            summary.water_l[AssetKind.TREE.value],
            summary.water_l_fixed[AssetKind.TREE.value],
        ),
        (
            _t(language, "Wasser Grünflächen (Liter)", "Water for green spaces (litres)"),
            summary.water_l[AssetKind.GREEN_SPACE.value],
            summary.water_l_fixed[AssetKind.GREEN_SPACE.value],
        ),
    ]
    for label, ours, fixed in rows:
        change = f"{ours / fixed - 1:+.0%}" if fixed else "–"
        comparison.add_row(label, _count(ours, language), _count(fixed, language), change)
    console.print(comparison)
    console.print(
        _t(
            language,
            "Feste Touren gießen wöchentlich nach Plan (Jungbäume 100–200 L, alte Bäume 80 L, Grünflächen 400 L); "
            "Flurfunk gießt, was die Wasserbilanz bis zur nächsten Gießtour verlangt — alte Bäume nicht, "
            "Grünflächen nach ihrer Verdunstung.",
            "Fixed rounds water weekly by the book (young trees 100–200 L, old trees 80 L, green spaces 400 L); "
            "Flurfunk gives what the water balance asks for until the next watering run — none to old trees, "
            "green spaces by their evapotranspiration.",
        )
    )
