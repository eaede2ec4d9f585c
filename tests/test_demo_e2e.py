"""The demo end to end, as a user runs it: real processes, real HTTP, the summary and the served feed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e

DEMO = [sys.executable, "-m", "flurfunk.cli", "demo"]
ENV = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}


def _run_once(*args: str) -> str:
    finished = subprocess.run(
        [*DEMO, "--once", "--port", "0", *args], capture_output=True, text=True, timeout=600, env=ENV
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


@pytest.mark.timeout(900)  # three demo runs; the machine may be busy
def test_same_seed_prints_the_same_summary_and_another_seed_does_not() -> None:
    first = _run_once("--days", "1", "--seed", "11")
    second = _run_once("--days", "1", "--seed", "11")
    other = _run_once("--days", "1", "--seed", "12")
    assert first == second
    assert first != other
    assert "Uplinks empfangen" in first and "Aufgaben je Gemeinde" in first
    received = int(re.search(r"Uplinks empfangen: ([\d.]+)", first).group(1).replace(".", ""))
    counts = re.search(r"gepuffert: ([\d.]+), in der Cloud gespeichert: ([\d.]+)", first).groups()
    buffered, stored = (int(count.replace(".", "")) for count in counts)
    assert received > 10_000  # a day of ~500 sensors
    assert stored == buffered > received  # every buffered reading reached the cloud; uplinks carry several


def test_english_summary() -> None:
    output = _run_once("--days", "1", "--lang", "en")
    assert "Uplinks received" in output and "Tasks by municipality" in output
    assert re.search(r"Uplinks received: \d{1,3}(,\d{3})+\n", output)  # English thousands separator
    # The sensors report three days before the first plan, so the first day is planned by forecasts already.
    assert "1 day, seed 1 (sensors from 3 days before)" in output
    planned = re.search(r"Planned by: fill forecast (\d+), water balance (\d+), latest reading (\d+)", output)
    assert planned and int(planned.group(1)) > 0 and planned.group(3) == "0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_feed_answers_while_the_demo_serves() -> None:
    port = _free_port()
    demo = subprocess.Popen(
        [*DEMO, "--days", "2", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        deadline = time.monotonic() + 240
        output = ""
        while "Strg-C" not in output:
            line = demo.stdout.readline()
            assert line or demo.poll() is None, demo.stderr.read()
            output += line
            assert time.monotonic() < deadline, "the demo never said it serves"
        tasks = httpx.get(f"http://127.0.0.1:{port}/api/v1/feed/tasks", timeout=10)
        assert tasks.status_code == 200
        feed = tasks.json()
        assert feed and {"id", "kind", "asset", "municipality", "state", "reason"} <= set(feed[0])
        assert all(task["state"] == "done" for task in feed if task["due_until"] < "2026-07-07T12")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "Leeren" in page.text
        geojson = httpx.get(f"http://127.0.0.1:{port}/api/v1/feed/routes.geojson", timeout=10).json()
        assert geojson["type"] == "FeatureCollection" and json.dumps(geojson)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    assert demo.returncode == 0
