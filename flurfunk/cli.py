"""The `flurfunk` command line: one entry for the demo, the cloud and the decoders."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime

import click

from flurfunk.i18n import DEFAULT_LANGUAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flurfunk")
def main() -> None:
    """Flurfunk: LoRaWAN sensors to tasks and routes for the municipal works yard."""


@main.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366), help="Simulated days to run.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the virtual towns and their sensors.")
@click.option(
    "--start",
    "start_day",
    default="2026-07-06",
    show_default=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First simulated day (a summer start shows watering; a winter one does not).",
)
@click.option("--once", is_flag=True, help="Print the summary and exit instead of serving the task feed.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the task feed listens on.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Keep the demo's databases here (default: temp).")
@click.option("--lang", "language", default=DEFAULT_LANGUAGE, type=click.Choice(["de", "en"]), show_default=True)
@click.option(
    "--edge-model",
    is_flag=True,
    help="Score readings on the gateways with the shipped learned anomaly model too, not only the rules (slower).",
)
def demo(
    days: int,
    seed: int,
    start_day: object,
    once: bool,
    host: str,
    port: int,
    data_dir: str | None,
    language: str,
    edge_model: bool,
) -> None:
    """Virtual sensors through a gateway into the cloud: tasks and routes out, no services needed."""
    from flurfunk.demo import DemoOptions, run_demo

    options = DemoOptions(
        days=days,
        seed=seed,
        start=start_day.date() if hasattr(start_day, "date") else date.fromisoformat(str(start_day)),
        serve=not once,
        host=host,
        port=port,
        data_dir=data_dir,
        language=language,
        edge_model=edge_model,
    )
    sys.exit(run_demo(options))


@main.command()
@click.argument("arguments", nargs=-1, required=True, metavar="[MODEL_ID] F_PORT PAYLOAD_HEX")
@click.option(
    "--codec",
    "codec_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Decode with this JS codec (TTN device repository or ChirpStack) instead of a native model; no MODEL_ID.",
)
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Reading map (TOML) for the codec's output [default: the codec file with .toml, if there is one].",
)
def decode(arguments: tuple[str, ...], codec_path: str | None, mapping_path: str | None) -> None:
    """Decode one uplink payload (hex): natively, `flurfunk decode dragino/lse01 2 ce29...`, or with a vendor's
    JS codec, `flurfunk decode --codec lse01.js [--mapping lse01.toml] 2 ce29...`."""
    from pathlib import Path

    import decoders

    expected = ["F_PORT", "PAYLOAD_HEX"] if codec_path else ["MODEL_ID", "F_PORT", "PAYLOAD_HEX"]
    if len(arguments) != len(expected):
        raise click.UsageError(f"expected {' '.join(expected)}, got {len(arguments)} argument(s)")
    *model, port_text, payload_hex = arguments
    f_port = click.IntRange(1, 255).convert(port_text, None, None)
    try:
        payload = bytes.fromhex(payload_hex)
    except ValueError as error:
        raise click.BadParameter(f"not hex: {error}", param_hint="PAYLOAD_HEX") from error
    try:
        if codec_path is None:
            decoded = decoders.decode(model[0], f_port, payload)
        else:
            from decoders.jsruntime import JsCodec, MappingError, load_reading_map

            beside = Path(codec_path).with_suffix(".toml")
            map_path = mapping_path or (str(beside) if beside.exists() else None)
            try:
                reading_map = load_reading_map(map_path) if map_path else None
            except MappingError as error:
                raise click.ClickException(str(error)) from error
            decoded = JsCodec.from_file(codec_path, reading_map=reading_map).decode_uplink(f_port, payload)
    except (decoders.DecodeError, decoders.UnknownModelError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        json.dumps(
            {
                "model_id": decoded.model_id,
                "f_port": decoded.f_port,
                "fields": decoded.fields,
                "measurements": [
                    {"quantity": m.quantity.value, "value": m.value, "unit": m.quantity.unit}
                    for m in decoded.measurements
                ],
                "warnings": list(decoded.warnings),
            },
            ensure_ascii=False,
            indent=2,
        )
    )


@main.group()
def cloud() -> None:
    """The cloud side: ingest, stores, task feed."""


@cloud.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Serve the cloud API with settings from FLURFUNK_CLOUD_* environment variables."""
    import uvicorn

    from cloud import create_app
    from cloud.settings import CloudSettings

    uvicorn.run(create_app(CloudSettings()), host=host, port=port, log_level="info")


@cloud.command()
def migrate() -> None:
    """Bring the operational database (FLURFUNK_CLOUD_DATABASE_URL) to the newest schema."""
    from cloud.settings import CloudSettings
    from cloud.store.migrations import SchemaNotAtHeadError, current_revision, upgrade_to_head
    from cloud.store.operational import OperationalStore

    store = OperationalStore.from_url(CloudSettings().database_url)
    try:
        before = current_revision(store.engine)
        upgrade_to_head(store.engine)
        after = current_revision(store.engine)
    except SchemaNotAtHeadError as error:
        raise click.ClickException(str(error)) from error
    finally:
        store.engine.dispose()
    click.echo(f"operational schema at revision {after} (was {before or 'empty'})")


@cloud.command("create-admin")
@click.argument("username")
@click.option("--municipality", default=None, help="Town name for a town admin; omit for a district admin.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="FLURFUNK_ADMIN_PASSWORD",
    help="Read from FLURFUNK_ADMIN_PASSWORD or asked for; never pass it on the command line in production.",
)
def create_admin(username: str, municipality: str | None, password: str) -> None:
    """Create an admin account (migrates the schema first); district-wide unless --municipality is given."""
    from sqlalchemy import select

    from cloud.auth import MIN_PASSWORD_LENGTH, Role, hash_password
    from cloud.settings import CloudSettings
    from cloud.store.accounts import Accounts
    from cloud.store.migrations import upgrade_to_head
    from cloud.store.operational import ConflictError, MunicipalityRow, OperationalStore

    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(f"needs at least {MIN_PASSWORD_LENGTH} characters", param_hint="--password")
    store = OperationalStore.from_url(CloudSettings().database_url)
    try:
        upgrade_to_head(store.engine)
        if municipality is not None:
            with store.session() as session:
                towns = list(session.scalars(select(MunicipalityRow.name).order_by(MunicipalityRow.name)))
            if municipality not in towns:
                raise click.BadParameter(f"unknown town; known: {', '.join(towns)}", param_hint="--municipality")
        role = Role.ADMIN if municipality else Role.DISTRICT_ADMIN
        user = Accounts(store).create_user(username, hash_password(password), role, municipality, "cli")
    except ConflictError as error:
        raise click.ClickException(str(error)) from error
    finally:
        store.engine.dispose()
    click.echo(f"created {user.role.value} {user.username!r} (id {user.id}) for {municipality or 'all towns'}")


@main.group()
def gateway() -> None:
    """The gateway service on the Raspberry Pi: sources, durable buffer, cloud sync."""


@gateway.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Gateway TOML file.")
def gateway_run(config_path: str) -> None:
    """Run the gateway until SIGTERM: receive, decode, buffer and sync; health on localhost."""
    import asyncio

    from gateway.config import GatewayConfigError, load_config
    from gateway.service import configure_logging, run

    try:
        config = load_config(config_path)
        config.cloud_token()  # fail now, in plain words, not later in the sync loop
        config.device_bindings()
        config.device_sessions()  # a key file others may read stops it here, naming the file
    except GatewayConfigError as error:
        raise click.ClickException(str(error)) from error
    configure_logging(config.gateway.id, config.log_level)
    sys.exit(asyncio.run(run(config)))


@gateway.command("status")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Gateway TOML file (health address).")
@click.option("--url", help="Health address of the running service, e.g. http://127.0.0.1:9470.")
@click.option("--lang", "language", default=DEFAULT_LANGUAGE, type=click.Choice(["de", "en"]), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
def gateway_status(config_path: str | None, url: str | None, language: str, as_json: bool) -> None:
    """What the running gateway received, buffered, dropped and synced, in plain words."""
    import httpx

    from flurfunk.i18n import text
    from gateway.config import DEFAULT_HEALTH_BIND, GatewayConfigError, load_config
    from gateway.health import format_status
    from gateway.service import fetch_status

    if url is None:
        bind = DEFAULT_HEALTH_BIND
        if config_path is not None:
            try:
                bind = load_config(config_path).health.bind
            except GatewayConfigError as error:
                raise click.ClickException(str(error)) from error
        host, _, port = bind.rpartition(":")
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    try:
        snapshot = fetch_status(url)
    except (httpx.HTTPError, ValueError) as error:
        click.echo(text("gateway.status.unreachable", language, url=url, error=type(error).__name__), err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(snapshot, ensure_ascii=False, indent=2))
    else:
        click.echo(format_status(snapshot, language))
    sys.exit(0 if snapshot.get("status") == "ok" else 1)


@cloud.command("train-anomaly")
@click.option("--out", "out_dir", default="anomaly-bundle", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the simulated training district.")
@click.option("--days", default=16, show_default=True, type=click.IntRange(8, 366),
              help="Simulated training days, split over four seasons (seeds seed..seed+3).")  # fmt: skip
@click.option("--test-days", default=7, show_default=True, type=click.IntRange(2, 366),
              help="Held-out days (seed+1000, from 3 August).")  # fmt: skip
@click.option("--scale", default=0.3, show_default=True, type=click.FloatRange(0.05, 5.0), help="District size.")
@click.option("--version", "bundle_version", default=None, help="Bundle version (default: sim-s<seed>-d<days>).")
@click.option("--history-from", "history_from", default=None, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Also train on the towns' own readings from this day (the cloud's stores).")  # fmt: skip
@click.option("--history-to", "history_to", default=None, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="... up to this day (exclusive; default: today).")  # fmt: skip
def train_anomaly(
    out_dir: str,
    seed: int,
    days: int,
    test_days: int,
    scale: float,
    bundle_version: str | None,
    history_from: datetime | None,
    history_to: datetime | None,
) -> None:
    """Train the edge anomaly models on simulated faults (and, with --history-from, on the towns' own readings
    from the cloud's series store with faults injected); write the bundle and report (JSON, PNG) to --out."""
    from pathlib import Path

    from cloud.anomaly.train import TrainOptions, history_records, train_and_report

    options = TrainOptions(seed=seed, days=days, test_days=test_days, scale=scale, version=bundle_version)
    history = []
    if history_from is not None:
        from cloud.settings import CloudSettings

        start = history_from.replace(tzinfo=UTC)
        end = (history_to or datetime.now(UTC)).replace(tzinfo=UTC)
        try:
            history = history_records(CloudSettings(), start, end, seed)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        click.echo(f"history: {len(history)} readings from {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    elif history_to is not None:
        raise click.UsageError("--history-to needs --history-from")
    evaluation = train_and_report(options, Path(out_dir), history=history)
    for fault, metrics in sorted(evaluation.per_type.items()):
        click.echo(
            f"{fault:15} precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}  "
            f"F1 {metrics['f1']:.3f}  ({metrics['support']:.0f} readings)"
        )
    click.echo(f"clean readings flagged: {evaluation.clean_flag_rate:.2%} of {evaluation.clean_readings}")
    click.echo(f"bundle and report in {out_dir}")


@cloud.command("publish-anomaly")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--url", required=True, envvar="FLURFUNK_CLOUD_URL", help="The cloud, e.g. https://flurfunk.example.")
@click.option(
    "--token",
    required=True,
    envvar="FLURFUNK_API_TOKEN",
    help="An admin's or technician's login token or API key; read from FLURFUNK_API_TOKEN, not the command line.",
)
@click.option("--municipality", default=None, help="District admins: the town the bundle is for (default: all).")
@click.option("--assign-town", "assign_town", default=None, help="Then assign it to this town's gateways (town id).")
@click.option("--assign-gateway", "assign_gateway", default=None, help="Then assign it to this one gateway.")
def publish_anomaly(
    bundle_dir: str,
    url: str,
    token: str,
    municipality: str | None,
    assign_town: str | None,
    assign_gateway: str | None,
) -> None:
    """Upload a trained anomaly bundle folder to the cloud (checked there) and optionally assign it."""
    from urllib.parse import quote

    import httpx

    from flurfunk.bundle_archive import BundleArchiveError, pack_bundle

    try:
        archive = pack_bundle(bundle_dir)
    except BundleArchiveError as error:
        raise click.ClickException(str(error)) from error
    base = url.rstrip("/") + "/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=60.0, headers=headers) as client:

        def call(method: str, path: str, **kwargs: object) -> dict[str, object]:
            try:
                response = client.request(method, base + path, **kwargs)  # type: ignore[arg-type]
            except httpx.HTTPError as error:
                raise click.ClickException(f"{url}: {type(error).__name__}: {error}") from error
            if response.status_code >= 400:
                try:
                    detail = response.json().get("detail", response.text)
                except ValueError:
                    detail = response.text[:300]
                raise click.ClickException(f"{method} {path}: HTTP {response.status_code}: {detail}")
            return dict(response.json())

        params = {"municipality": municipality} if municipality else {}
        stored = call("POST", "/anomaly-bundles", content=archive, params=params)
        click.echo(f"bundle {stored['version']} stored (sha256 {stored['sha256']}, {stored['size_bytes']} bytes)")
        choice = {"version": stored["version"]}
        if assign_town:
            call("PUT", f"/municipalities/{quote(assign_town, safe='')}/anomaly-bundle", json=choice)
            click.echo(f"assigned to the gateways of {assign_town}")
        if assign_gateway:
            call("PUT", f"/gateways/{quote(assign_gateway, safe='')}/anomaly-bundle", json=choice)
            click.echo(f"assigned to gateway {assign_gateway}")


if __name__ == "__main__":
    main()
