"""The must-show of issue 6 in a real browser: headless Chromium (Debian's, through chromium-driver and selenium)
opens the crew page at phone size, logs in, starts and finishes a task, and the dispatcher page in a second browser
shows it done within 2 s (server-sent events). Map tiles point at a closed port: the list must work without them.

Screenshots go to $FLURFUNK_TEST_ARTIFACTS (default: pytest's tmp dir); their paths are printed.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from cloud import create_app
from cloud.scheduler.fleet import Site
from cloud.scheduler.fleet_routes import FleetRoute
from cloud.scheduler.planning import RouteReload
from cloud.store.operational import OperationalStore, Scope
from cloud.store.series_sqlite import SqliteSeriesStore
from flurfunk.contracts import Task, TaskKind
from tests.cloud_helpers import BOOTSTRAP_HEADERS, PASSWORD, asset_body, settings_for

pytestmark = pytest.mark.timeout(120)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TOWN = "Birstein"
BINS = ["bir-b1", "bir-b2", "bir-b3"]
PHONE = {"width": 360, "height": 740}
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium(user_data_dir: Path, phone: bool) -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev dependency (pip install -e .[dev])")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    if phone:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": PHONE | {"pixelRatio": 2.0, "touch": True}}
        )
    else:
        options.add_argument("--window-size=1280,900")
    # An explicit driver path: selenium's own driver manager would try to download one.
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("FLURFUNK_TEST_ARTIFACTS") or tmp_path / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[[bool], Any]]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup --services installs them)")
    opened: list[Any] = []

    def open_browser(phone: bool) -> Any:
        driver = chromium(tmp_path / f"chromium-profile-{len(opened)}", phone)
        opened.append(driver)
        return driver

    try:
        yield open_browser
    finally:
        for driver in opened:
            driver.quit()


def seed(base_url: str, store: OperationalStore) -> list[str]:
    """Three bins on today's collection route in Birstein and a crew member; returns the task ids in route order."""
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    assets = [asset_body(b, TOWN, latitude=50.35 + 0.004 * i, longitude=9.30 + 0.006 * i) for i, b in enumerate(BINS)]
    inventory = {
        "depots": [{"municipality": TOWN, "name": "Bauhof Birstein", "latitude": 50.345, "longitude": 9.29}],
        "assets": assets,
    }
    with httpx.Client(base_url=base_url, headers=BOOTSTRAP_HEADERS, timeout=10) as client:
        assert client.post("/api/v1/admin/inventory", json=inventory).status_code == 200
        user = {"username": "kolonne1", "password": PASSWORD, "role": "crew", "municipality": TOWN}
        assert client.post("/api/v1/users", json=user).status_code == 201
    start = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    order = [BINS[2], BINS[0], BINS[1]]  # the route's order differs from the ids' order on purpose
    tasks = [
        Task(
            id=f"{today:%Y%m%d}-collect-{asset}",
            kind=TaskKind.COLLECT,
            asset=asset,
            municipality=TOWN,
            due_from=start,
            due_until=start + timedelta(hours=9),
            priority=70,
            reason=f"Behälter {asset} ist zu 92 % gefüllt (Schwelle 80 %).",
            evidence={"fill_ratio": 0.92},
            route_id="route-birstein",
        )
        for asset in BINS
    ]
    coordinates = {a["id"]: (a["latitude"], a["longitude"]) for a in assets}
    # Planned with a fleet: 242 L per stop on a truck made small (400 L), so it tips twice between the stops.
    site = Site("waste-centre", "Umladestation", 50.33, 9.25, unload_s=900)
    route = FleetRoute(
        id="route-birstein",
        municipality=TOWN,
        kind=TaskKind.COLLECT,
        day=today,
        stops=order,
        km=4.2,
        polyline=[(50.345, 9.29), *(coordinates[a] for a in order), (50.345, 9.29)],
        vehicle="rear-loader",
        reloads=(RouteReload(1, site.id), RouteReload(2, site.id)),
        trip_loads=(242, 242, 242),
        service_starts_s=(6 * 3600 + 720, 6 * 3600 + 2400, 6 * 3600 + 4080),
        start_s=6 * 3600,
        end_s=8 * 3600,
        capacity_l=400,
        reload_site=site,
        stop_loads=(242, 242, 242),
        stop_service_s=(90, 90, 90),
        shift_end_s=14 * 3600 + 1800,
        speed_kmh=30.0,
    )
    store.replace_plan(today, tasks, [route], scope=Scope(TOWN))
    return [f"{today:%Y%m%d}-collect-{asset}" for asset in order]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def test_a_crew_marks_a_task_done_on_a_phone_and_the_dispatcher_sees_it_within_2_s(
    tmp_path: Path, serve_app: Callable[[object], str], browsers: Callable[[bool], Any], artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    series = SqliteSeriesStore(tmp_path / "series.sqlite")
    # Tiles from a closed port: the page must show the route list anyway (and say the map has no tiles).
    settings = settings_for(tmp_path, open_read=True, tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
    app = create_app(settings, series=series)
    base_url = serve_app(app)
    route_order = seed(base_url, app.state.cloud.store)

    dispatcher = browsers(False)
    dispatcher.get(f"{base_url}/")
    wait_for(lambda: dispatcher.find_elements(By.ID, f"task-{route_order[0]}"), 10, "the dispatcher's task table")
    wait_for(
        lambda: dispatcher.find_element(By.ID, "live").get_attribute("data-connected") == "true",
        10,
        "the dispatcher page's live feed",
    )

    phone = browsers(True)
    phone.get(f"{base_url}/crew")
    assert phone.execute_script("return window.innerWidth") == PHONE["width"]
    assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de"
    phone.find_element(By.NAME, "username").send_keys("kolonne1")
    phone.find_element(By.NAME, "password").send_keys(PASSWORD)
    phone.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    items = wait_for(lambda: phone.find_elements(By.CSS_SELECTOR, "#tasks li.task"), 10, "the crew's task list")
    assert [item.get_attribute("data-task-id") for item in items] == route_order  # in driving order
    # the trips to the disposal site sit between the stops, as planned, with what the truck tips there
    places = phone.find_elements(By.CSS_SELECTOR, "#tasks > li")
    assert [place.get_attribute("class").split()[0] for place in places] == ["task", "reload", "task", "reload", "task"]
    assert places[1].text.replace("\n", " ") == "Entleeren an: Umladestation 242 L"
    assert "Fahrzeug rear-loader" in phone.find_element(By.ID, "vehicles").text
    assert "ca. 06:12 Uhr" in places[0].text  # the stop's planned time
    assert phone.execute_script("return !!sessionStorage.getItem('flurfunk.token')")
    assert phone.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
    first = route_order[0]
    start_button = phone.find_element(By.CSS_SELECTOR, f'li[data-task-id="{first}"] button[data-action="start"]')
    assert start_button.text == "Beginnen"
    wait_for(lambda: phone.find_element(By.ID, "map-note").is_displayed(), 10, "the note that map tiles are missing")
    phone.save_screenshot(str(artifacts / "crew-list.png"))

    start_button.click()
    done_selector = f'li[data-task-id="{first}"] button[data-action="done"]'
    wait_for(lambda: phone.find_elements(By.CSS_SELECTOR, done_selector), 10, "the task to be in progress")
    wait_for(
        lambda: (
            "state-in_progress"
            in dispatcher.find_element(By.CSS_SELECTOR, f"#task-{first} td.state").get_attribute("class")
        ),
        5,
        "the dispatcher to see the task in progress",
    )

    phone.find_element(By.CSS_SELECTOR, done_selector).click()
    clicked = time.monotonic()
    wait_for(
        lambda: (
            "state-done" in dispatcher.find_element(By.CSS_SELECTOR, f"#task-{first} td.state").get_attribute("class")
        ),
        2.0,
        "the dispatcher's feed to show the task done",
    )
    seen_after_s = time.monotonic() - clicked
    assert dispatcher.find_element(By.CSS_SELECTOR, f"#task-{first} td.state").text == "erledigt"
    dispatcher.save_screenshot(str(artifacts / "dispatcher-done.png"))

    # Skipping needs a reason, typed on the phone.
    second = route_order[1]
    phone.find_element(By.CSS_SELECTOR, f'li[data-task-id="{second}"] button[data-action="start"]').click()
    skip_selector = f'li[data-task-id="{second}"] button[data-action="skip"]'
    wait_for(lambda: phone.find_elements(By.CSS_SELECTOR, skip_selector), 10, "the skip button")
    phone.find_element(By.CSS_SELECTOR, skip_selector).click()
    phone.find_element(By.CSS_SELECTOR, f'li[data-task-id="{second}"] .actions input').send_keys("Zufahrt zugeparkt")
    phone.find_element(By.CSS_SELECTOR, f'li[data-task-id="{second}"] button[data-action="skip-confirm"]').click()
    wait_for(
        lambda: (
            phone.find_element(By.CSS_SELECTOR, f'li[data-task-id="{second}"]').get_attribute("data-state") == "skipped"
        ),
        10,
        "the task to be skipped",
    )
    assert "Zufahrt zugeparkt" in phone.find_element(By.CSS_SELECTOR, f'li[data-task-id="{second}"] .state').text
    phone.save_screenshot(str(artifacts / "crew-after.png"))
    print(f"\ndispatcher saw 'done' after {seen_after_s:.2f} s; screenshots in {artifacts}")

    for driver in (phone, dispatcher):
        driver.get("about:blank")  # ends the event stream before the server stops
    series.close()
