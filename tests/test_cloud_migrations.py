"""Alembic migrations on SQLite and the real PostgreSQL: head matches the models, towns are seeded, down and up
again work, an app refuses a schema that is not at head, and the CLI migrates and creates the first admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect
from sqlalchemy import text as sql

from cloud import create_app
from cloud.store.migrations import (
    SchemaNotAtHeadError,
    alembic_config,
    check_at_head,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from cloud.store.operational import Base, OperationalStore
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.cli import main
from flurfunk.contracts import MUNICIPALITIES
from tests.cloud_helpers import empty_postgres_schema, settings_for


def exercise_migrations(url: str) -> None:
    store = OperationalStore.from_url(url)
    try:
        upgrade_to_head(store.engine)
        upgrade_to_head(store.engine)  # idempotent
        assert current_revision(store.engine) == head_revision()
        check_at_head(store.engine)
        with store.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            towns = set(connection.execute(sql("SELECT name FROM municipalities")).scalars())
        assert differences == [], "the models and the migrations disagree: add a revision"
        assert towns == set(MUNICIPALITIES)

        command.downgrade(alembic_config(store.engine), "base")
        assert not inspect(store.engine).has_table("assets")
        with pytest.raises(SchemaNotAtHeadError, match="flurfunk cloud migrate"):
            check_at_head(store.engine)
        upgrade_to_head(store.engine)
        assert {"users", "api_keys", "audit_log", "devices"} <= set(inspect(store.engine).get_table_names())
    finally:
        store.engine.dispose()


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    exercise_migrations(f"sqlite:///{tmp_path / 'operational.sqlite'}")


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    with empty_postgres_schema(postgres_url, "migrations") as database_url:
        yield database_url


def test_migrations_on_postgresql(postgres_schema: str) -> None:
    exercise_migrations(postgres_schema)


def test_an_app_without_auto_migrate_refuses_a_schema_not_at_head(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, auto_migrate=False)
    with pytest.raises(SchemaNotAtHeadError, match="run `flurfunk cloud migrate`"):
        create_app(settings, series=SqliteSeriesStore(":memory:"))


def test_a_database_from_before_migrations_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)  # what create_schema did before Alembic
    with pytest.raises(SchemaNotAtHeadError, match="created before migrations"):
        upgrade_to_head(engine)
    engine.dispose()


def test_the_cli_migrates_and_creates_the_first_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLURFUNK_CLOUD_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    migrated = runner.invoke(main, ["cloud", "migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert f"revision {head_revision()} (was empty)" in migrated.output
    created = runner.invoke(
        main, ["cloud", "create-admin", "zv-admin"], env={"FLURFUNK_ADMIN_PASSWORD": "a long passphrase"}
    )
    assert created.exit_code == 0, created.output
    assert "district_admin 'zv-admin'" in created.output
    town = runner.invoke(
        main, ["cloud", "create-admin", "orb-admin", "--municipality", "Bad Orb"], input="a long passphrase\n" * 2
    )
    assert town.exit_code == 0 and "admin 'orb-admin'" in town.output
    again = runner.invoke(main, ["cloud", "create-admin", "zv-admin"], env={"FLURFUNK_ADMIN_PASSWORD": "x" * 12})
    assert again.exit_code != 0 and "exists already" in again.output
    unknown = runner.invoke(
        main, ["cloud", "create-admin", "x", "--municipality", "Atlantis"], env={"FLURFUNK_ADMIN_PASSWORD": "x" * 12}
    )
    assert unknown.exit_code != 0 and "unknown town" in unknown.output

    settings = settings_for(tmp_path)
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings, series=SqliteSeriesStore(":memory:"))) as client:
        login = client.post("/api/v1/auth/login", json={"username": "zv-admin", "password": "a long passphrase"})
        assert login.status_code == 200 and login.json()["role"] == "district_admin"
