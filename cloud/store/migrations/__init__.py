"""The operational schema's Alembic migrations: `upgrade_to_head(engine)` at startup or `flurfunk cloud migrate`.

Configured in code (no alembic.ini): the script location is this package and the target metadata is
`cloud.store.operational.Base.metadata`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

MIGRATIONS_DIR = Path(__file__).parent


class SchemaNotAtHeadError(RuntimeError):
    """The operational database's schema is older (or newer) than this code; the message says what to run."""


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        # env.py takes the engine from here, so URLs with passwords never pass through ConfigParser interpolation.
        config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaNotAtHeadError("the migrations package has no revisions")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration not yet applied (idempotent). Refuses a database made before migrations existed."""
    if current_revision(engine) is None and inspect(engine).has_table("assets"):
        raise SchemaNotAtHeadError(
            "the operational database has tables but no Alembic version (it was created before migrations); "
            "move it away and start with an empty database"
        )
    command.upgrade(alembic_config(engine), "head")


def check_at_head(engine: Engine) -> None:
    """Raise SchemaNotAtHeadError unless the schema is at the newest revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaNotAtHeadError(
            f"the operational database is at revision {current or 'none'}, this code needs {head}: "
            "run `flurfunk cloud migrate`"
        )
