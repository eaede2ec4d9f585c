"""Model bundles on the wire: one archive (tar.gz or zip) of a bundle directory, packed and unpacked safely.

The cloud unpacks an uploaded archive to check it before it accepts it; the gateway unpacks what it downloads. Both
sides share these limits: only regular files, flat or under one top-level folder, no absolute paths, no `..`, no
links or devices, at most `MAX_MEMBERS` entries and `MAX_UNPACKED_BYTES` in all (so a zip or gzip bomb stops early).
`pack_bundle` is deterministic: the same directory gives the same bytes, hence the same sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

MEDIA_TYPE = "application/gzip"
MAX_ARCHIVE_BYTES = 16 * 1024 * 1024
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 64
_CHUNK = 64 * 1024


class BundleArchiveError(ValueError):
    """An archive that is not a bundle archive or breaks a limit; the message names the member and the reason."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_bundle(directory: Path | str) -> bytes:
    """The bundle's files (not its sub-folders, e.g. a training report) as a deterministic tar.gz."""
    directory = Path(directory)
    files = sorted(path for path in directory.iterdir() if path.is_file())
    if not any(path.name == "bundle.json" for path in files):
        raise BundleArchiveError(f"{directory}: no bundle.json; is this a bundle directory?")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as compressed:
        compressed.write(raw.getvalue())
    data = packed.getvalue()
    if len(data) > MAX_ARCHIVE_BYTES:
        raise BundleArchiveError(f"{directory}: packed bundle is {len(data)} bytes, more than {MAX_ARCHIVE_BYTES}")
    return data


def _member_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise BundleArchiveError(f"{name!r}: absolute paths are not allowed")
    parts = [part for part in path.parts if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise BundleArchiveError(f"{name!r}: '..' is not allowed (path traversal)")
    if not parts or len(parts) > 2:
        raise BundleArchiveError(f"{name!r}: bundle files sit at the top or in one top-level folder")
    return PurePosixPath(*parts)


def _strip_folder(names: list[PurePosixPath]) -> list[str]:
    """Flat names: the archive may hold the files directly or under one folder (as `tar czf b.tgz DIR/` makes)."""
    folders = {name.parts[0] for name in names if len(name.parts) == 2}
    if any(len(name.parts) == 2 for name in names) and (len(folders) > 1 or any(len(n.parts) == 1 for n in names)):
        raise BundleArchiveError("files must all sit at the top or all in one folder")
    flat = [name.name for name in names]
    duplicates = sorted({name for name in flat if flat.count(name) > 1})
    if duplicates:
        raise BundleArchiveError(f"{duplicates[0]!r} appears more than once")
    return flat


def _tar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BundleArchiveError("not a tar.gz or zip archive") from error
    with archive:
        total = 0
        members = []
        try:
            for seen, member in enumerate(archive, start=1):
                if seen > MAX_MEMBERS:  # folders count too: a million empty ones must not keep us busy
                    raise BundleArchiveError(f"more than {MAX_MEMBERS} entries")
                if member.isdir():
                    _member_name(member.name + "/x")  # the folder's own name must be safe too
                    continue
                if not member.isfile():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise BundleArchiveError(f"{member.name!r}: a {kind} is not allowed")
                members.append(member)
                total += member.size
                if total > MAX_UNPACKED_BYTES:
                    raise BundleArchiveError(f"unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            names = _strip_folder([_member_name(member.name) for member in members])
            for name, member in zip(names, members, strict=True):
                handle = archive.extractfile(member)
                assert handle is not None  # a regular file
                yield name, handle.read(member.size)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise BundleArchiveError(f"archive is damaged ({type(error).__name__}: {error})") from error


def _zip_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleArchiveError(f"not a zip archive ({error})") from error
    with archive:
        if len(archive.infolist()) > MAX_MEMBERS:
            raise BundleArchiveError(f"more than {MAX_MEMBERS} entries")
        infos = [info for info in archive.infolist() if not info.is_dir()]
        for info in infos:
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BundleArchiveError(f"{info.filename!r}: a link is not allowed")
        names = _strip_folder([_member_name(info.filename) for info in infos])
        total = 0
        for name, info in zip(names, infos, strict=True):
            # Read in chunks and count what comes out: the sizes in a zip's directory may lie.
            chunks = []
            try:
                with archive.open(info) as handle:
                    while chunk := handle.read(_CHUNK):
                        total += len(chunk)
                        if total > MAX_UNPACKED_BYTES:
                            raise BundleArchiveError(f"unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                        chunks.append(chunk)
            except (zipfile.BadZipFile, OSError, NotImplementedError, zlib.error) as error:
                raise BundleArchiveError(f"{info.filename!r}: damaged ({type(error).__name__}: {error})") from error
            yield name, b"".join(chunks)


def unpack_bundle(data: bytes, destination: Path | str) -> list[str]:
    """Write the archive's files flat into `destination` (an empty or new folder); the names written."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise BundleArchiveError(f"archive is {len(data)} bytes, more than {MAX_ARCHIVE_BYTES}")
    members = _zip_members(data) if data[:4] == b"PK\x03\x04" else _tar_members(data)
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in members:
        target = destination / name
        # Exclusive create: never through a link someone left, never over a file written a moment ago.
        with open(target, "xb") as handle:
            handle.write(content)
        written.append(name)
    if "bundle.json" not in written:
        raise BundleArchiveError("no bundle.json in the archive")
    return written
