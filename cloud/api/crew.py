"""The crew page (`/crew`): a phone-first page with a crew's ordered route on a map and as a list, where crew
members start, finish or skip tasks; and the static files it needs (served by the cloud, no CDN, no build step).

The page itself carries no town data: its script logs in (`POST /api/v1/auth/login`), keeps the token in
sessionStorage and reads the feed API, so the tenant scope applies exactly as for any other client.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from string import Template
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, Response

from cloud.api.deps import Context
from flurfunk.i18n import MESSAGES, Language, text

router = APIRouter(tags=["page"])

_PAGE = Template(resources.files("cloud").joinpath("templates/crew.html").read_text(encoding="utf-8"))

STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
MAX_STATIC_PATH = 200


def page_texts(language: Language) -> dict[str, str]:
    """The texts the page's script shows: crew page keys, task kinds and states, route wording (templates with
    {placeholders})."""
    prefixes = ("page.crew.", "task.kind.", "task.state.", "route.")
    return {key: MESSAGES[key][language] for key in MESSAGES if key.startswith(prefixes)}


def json_for_script(value: object) -> str:
    """JSON safe inside <script>: no `</script>` or `<!--` can end the element early."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/crew", response_class=HTMLResponse)
def crew_page(
    context: Context,
    lang: Literal["de", "en"] | None = None,
    crew: str | None = Query(default=None, max_length=100),
    day: str | None = Query(default=None, max_length=10),
) -> HTMLResponse:
    """The crew page, German by default (`lang=en`); `crew` and `day` preselect what it shows."""
    language: Language = lang or context.settings.language
    config = {
        "language": language,
        "texts": page_texts(language),
        "tileUrl": context.settings.tile_url,
        "crew": crew,
        "day": day,
    }
    html = _PAGE.substitute(
        lang=language,
        title=text("page.crew.title", language, crew="").strip(),
        config=json_for_script(config),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _static_file(path: str) -> Traversable:
    parts = path.split("/")
    if len(path) > MAX_STATIC_PATH or any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    found = resources.files("cloud").joinpath("static", *parts)
    if not found.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return found


@router.get("/static/{path:path}", include_in_schema=False)
def static_file(path: str) -> Response:
    """Files under cloud/static (the page scripts, styles, vendored Leaflet); only known types, no directory walk."""
    suffix = path[path.rfind(".") :] if "." in path else ""
    media_type = STATIC_TYPES.get(suffix)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return Response(_static_file(path).read_bytes(), media_type=media_type, headers={"Cache-Control": "max-age=3600"})
