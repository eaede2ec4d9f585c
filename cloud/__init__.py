"""The cloud: ingest, storage, scheduler and routing, task feed and dispatcher page. Entry: `cloud.create_app`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `cloud.scheduler` and the stores stay usable without loading FastAPI.
    if name == "create_app":
        from cloud.app import create_app

        return create_app
    raise AttributeError(f"module 'cloud' has no attribute {name!r}")
