"""Bundle archives (flurfunk.bundle_archive): the good case, hostile archives (traversal, links, bombs) and
arbitrary bytes, which only ever give a BundleArchiveError and never write outside the destination."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.anomaly import load_bundle
from flurfunk import bundle_archive
from flurfunk.bundle_archive import BundleArchiveError, pack_bundle, sha256_hex, unpack_bundle
from tests.anomaly_bundle_helpers import write_test_bundle


def tar_gz(members: list[tuple[str, bytes]], kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.type = kind
            info.linkname = link
            archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return raw.getvalue()


def zipped(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return raw.getvalue()


def test_a_bundle_packs_deterministically_and_loads_after_unpacking(tmp_path: Path) -> None:
    folder = write_test_bundle(tmp_path / "bundle", "t-1")
    (folder / "report").mkdir()
    (folder / "report" / "f1.png").write_bytes(b"png")
    first, second = pack_bundle(folder), pack_bundle(folder)
    assert first == second and sha256_hex(first) == sha256_hex(second)
    assert pack_bundle(write_test_bundle(tmp_path / "other", "t-1", seed=1)) != first
    names = unpack_bundle(first, tmp_path / "out")
    assert "bundle.json" in names and "report" not in names  # files only, not the training report folder
    assert load_bundle(tmp_path / "out").version == "t-1"


@pytest.mark.parametrize("make", [tar_gz, zipped])
def test_files_under_one_folder_are_unpacked_flat(tmp_path: Path, make: object) -> None:
    data = make([("v7/bundle.json", b"{}"), ("v7/bin.npz", b"x")])  # type: ignore[operator]
    assert sorted(unpack_bundle(data, tmp_path / "out")) == ["bin.npz", "bundle.json"]
    assert (tmp_path / "out" / "bin.npz").read_bytes() == b"x"


@pytest.mark.parametrize("make", [tar_gz, zipped])
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", "path traversal"),
        ("v1/../../evil.txt", "path traversal"),
        ("/etc/evil.txt", "absolute"),
        ("a/b/evil.txt", "one top-level folder"),
        ("C:/evil.txt", "absolute"),
    ],
)
def test_hostile_names_are_refused_and_nothing_escapes(tmp_path: Path, make: object, name: str, reason: str) -> None:
    data = make([("bundle.json", b"{}"), (name, b"pwned")])  # type: ignore[operator]
    with pytest.raises(BundleArchiveError, match=reason):
        unpack_bundle(data, tmp_path / "a" / "out")
    assert not any(path.name == "evil.txt" for path in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    ("kind", "what"),
    [(tarfile.SYMTYPE, "link"), (tarfile.LNKTYPE, "link"), (tarfile.CHRTYPE, "special"), (tarfile.FIFOTYPE, "special")],
)
def test_links_and_special_files_are_refused(tmp_path: Path, kind: bytes, what: str) -> None:
    data = tar_gz([("bundle.json", b"")], kind=kind, link="/etc/passwd")
    with pytest.raises(BundleArchiveError, match=what):
        unpack_bundle(data, tmp_path / "out")
    assert not (tmp_path / "out" / "bundle.json").exists()


def test_a_zip_symlink_is_refused(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        info = zipfile.ZipInfo("bundle.json")
        info.external_attr = (0o120777 << 16) | 0
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(BundleArchiveError, match="link"):
        unpack_bundle(raw.getvalue(), tmp_path / "out")


def test_a_bomb_stops_at_the_unpacked_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_archive, "MAX_UNPACKED_BYTES", 1_000_000)
    zeros = b"\0" * 2_000_000  # compresses to a few KB
    for data in (tar_gz([("bundle.json", zeros)]), zipped([("bundle.json", zeros)])):
        assert len(data) < 50_000
        with pytest.raises(BundleArchiveError, match="more than 1000000 bytes"):
            unpack_bundle(data, tmp_path / f"out-{len(data)}")


def test_too_many_files_duplicates_and_no_manifest_are_refused(tmp_path: Path) -> None:
    many = [(f"f{i}.npz", b"") for i in range(bundle_archive.MAX_MEMBERS + 1)]
    with pytest.raises(BundleArchiveError, match="more than 64 entries"):
        unpack_bundle(tar_gz(many), tmp_path / "a")
    with pytest.raises(BundleArchiveError, match="more than 64 entries"):
        unpack_bundle(zipped(many), tmp_path / "a2")
    folders = io.BytesIO()  # empty folders count as entries too
    with tarfile.open(fileobj=folders, mode="w:gz") as archive:
        for index in range(10_000):
            info = tarfile.TarInfo(f"d{index}")
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
    with pytest.raises(BundleArchiveError, match="more than 64 entries"):
        unpack_bundle(folders.getvalue(), tmp_path / "a3")
    with pytest.raises(BundleArchiveError, match="more than once"):
        unpack_bundle(tar_gz([("bundle.json", b""), ("./bundle.json", b"")]), tmp_path / "b")
    with pytest.raises(BundleArchiveError, match=r"no bundle\.json"):
        unpack_bundle(tar_gz([("bin.npz", b"")]), tmp_path / "c")
    with pytest.raises(BundleArchiveError, match="all in one folder"):
        unpack_bundle(tar_gz([("a/bundle.json", b""), ("b/bin.npz", b"")]), tmp_path / "d")


def test_an_archive_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(BundleArchiveError, match="more than"):
        unpack_bundle(b"\0" * (bundle_archive.MAX_ARCHIVE_BYTES + 1), tmp_path / "out")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_give_only_a_bundle_archive_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch, contextlib.suppress(BundleArchiveError):
        unpack_bundle(data, Path(scratch) / "out")


_NAME_PART = st.sampled_from(["..", ".", "", "a", "bundle.json", "b.npz", "/", "C:", "x\\..\\y"])


@pytest.mark.filterwarnings("ignore:Duplicate name")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(_NAME_PART, min_size=1, max_size=4).map("/".join).filter(bool), min_size=1, max_size=5),
    st.booleans(),
)
def test_whatever_the_names_nothing_is_written_outside_the_destination(names: list[str], as_zip: bool) -> None:
    members = [(name, b"data") for name in names]
    data = zipped(members) if as_zip else tar_gz(members)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        destination = root / "deep" / "out"
        try:
            written = unpack_bundle(data, destination)
        except BundleArchiveError:
            written = []
        outside = [
            Path(folder, file)
            for folder, _, files in os.walk(root)
            for file in files
            if not Path(folder, file).is_relative_to(destination)
        ]
        assert outside == []
        if written:
            assert sorted(written) == sorted(path.name for path in destination.iterdir())
