"""Device sessions: the bundle file (mode 0600, clear errors, no keys shown) and frame counters across restarts."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from gateway.lorawan import (
    FCNT_REPLAY,
    DeviceSession,
    FrameOpener,
    FrameRefusal,
    KeyFileModeError,
    MType,
    OpenedFrame,
    SessionConfigError,
    SessionStore,
    build_data_frame,
    load_sessions,
    write_sessions,
)

NWK_HEX = "44024241ed4ce9a68c6a8bc055233fd3"
APP_HEX = "ec925802ae430ca77fd3dd73cb2cc588"
SESSION = DeviceSession.model_validate(
    {"dev_eui": "70B3-D57E-D000-0001", "dev_addr": "49BE7DF1", "nwk_s_key": NWK_HEX, "app_s_key": APP_HEX}
)


def _frame(f_cnt: int) -> bytes:
    return build_data_frame(
        mtype=MType.UNCONFIRMED_DATA_UP,
        dev_addr=SESSION.dev_addr,
        f_cnt=f_cnt,
        f_port=1,
        payload=b"\x00",
        nwk_s_key=SESSION.nwk_s_key,
        app_s_key=SESSION.app_s_key,
    )


def _bundle_file(path: Path, document: object, mode: int = 0o600) -> Path:
    path.write_text(json.dumps(document))
    path.chmod(mode)
    return path


def test_written_bundle_has_mode_0600_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    previous = os.umask(0o000)  # even a careless umask must not widen the key file
    try:
        write_sessions(path, [SESSION])
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_sessions(path) == [SESSION]
    assert load_sessions(path)[0].dev_addr == 0x49BE7DF1


def test_wider_mode_is_refused_or_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sessions.json"
    write_sessions(path, [SESSION])
    path.chmod(0o644)
    with pytest.raises(KeyFileModeError, match=r"0644.*chmod 600"):
        load_sessions(path)
    with caplog.at_level(logging.WARNING):
        assert load_sessions(path, strict_mode=False) == [SESSION]
    assert "0644" in caplog.text


def test_keys_never_show_in_repr_or_errors(tmp_path: Path) -> None:
    assert NWK_HEX not in repr(SESSION) and APP_HEX not in repr(SESSION)
    bad_key = NWK_HEX[:-2] + "zz"
    path = _bundle_file(
        tmp_path / "bad.json",
        {
            "sessions": [
                {"dev_eui": "70b3d57ed0000001", "dev_addr": "49be7df1", "nwk_s_key": bad_key, "app_s_key": APP_HEX}
            ]
        },
    )
    with pytest.raises(SessionConfigError) as caught:
        load_sessions(path)
    message = str(caught.value)
    assert "sessions[0].nwk_s_key" in message and "hex" in message
    assert bad_key not in message and APP_HEX not in message


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (
            {
                "sessions": [
                    {"dev_eui": "70b3d57ed0000001", "dev_addr": "49be7d", "nwk_s_key": NWK_HEX, "app_s_key": APP_HEX}
                ]
            },
            "sessions[0].dev_addr",
        ),
        (
            {"sessions": [{"dev_eui": "70b3d57ed0000001", "dev_addr": "49be7df1", "nwk_s_key": NWK_HEX}]},
            "sessions[0].app_s_key",
        ),
        ({"sessions": "all"}, "sessions"),
        ({"version": 2, "sessions": []}, "version 2"),
        ([1, 2], "bundle"),
    ],
)
def test_invalid_bundles_name_the_entry_and_field(tmp_path: Path, document: object, words: str) -> None:
    with pytest.raises(SessionConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_sessions(_bundle_file(tmp_path / "b.json", document))


def test_not_json_and_missing_file_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(SessionConfigError, match="not JSON"):
        load_sessions(path)
    with pytest.raises(SessionConfigError, match="cannot read"):
        load_sessions(tmp_path / "missing.json")


def test_repeated_dev_eui_is_refused(tmp_path: Path) -> None:
    entry = SESSION.model_dump(mode="json")
    with pytest.raises(SessionConfigError, match=r"sessions\[1\].dev_eui .* repeats sessions\[0\]"):
        load_sessions(_bundle_file(tmp_path / "b.json", {"sessions": [entry, entry]}))


def test_counters_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    with SessionStore(path, [SESSION]) as sessions:
        opener = FrameOpener(sessions)
        assert isinstance(opener.open(_frame(41)), OpenedFrame)
        opener.commit()
    with SessionStore(path, [SESSION]) as sessions:
        assert sessions.last_f_cnt(SESSION) == 41
        refusal = FrameOpener(sessions).open(_frame(41))
        assert isinstance(refusal, FrameRefusal) and refusal.reason == FCNT_REPLAY
        assert isinstance(FrameOpener(sessions).open(_frame(42)), OpenedFrame)


def test_uncommitted_counters_are_forgotten_on_rollback_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    with SessionStore(path, [SESSION]) as sessions:
        opener = FrameOpener(sessions)
        assert isinstance(opener.open(_frame(7)), OpenedFrame)
        opener.rollback()
        assert isinstance(opener.open(_frame(7)), OpenedFrame)  # not durable: the retry is welcome
        assert isinstance(opener.open(_frame(8)), OpenedFrame)
    with SessionStore(path, [SESSION]) as sessions:
        assert sessions.last_f_cnt(SESSION) is None


def test_new_keys_start_a_fresh_counter_and_bundle_counter_is_a_floor(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    with SessionStore(path, [SESSION]) as sessions:
        sessions.advance(SESSION, 900, b"")
        sessions.commit()
    rekeyed = SESSION.model_copy(update={"nwk_s_key": bytes(16)})
    exported = SESSION.model_copy(update={"last_f_cnt": 5_000})
    with SessionStore(path, [rekeyed]) as sessions:
        assert sessions.last_f_cnt(rekeyed) is None
        sessions.replace([exported])
        assert sessions.last_f_cnt(exported) == 5_000
