"""Opening an OpenShift usage payload safely: a directory or a ``.tar.gz`` plus its manifest.

The tar members are checked before anything is extracted: a member whose path is absolute or
climbs out with ``..``, a symlink or hard link, a device or FIFO is refused, naming the member,
so a hostile payload cannot write outside the temporary directory it is extracted into. The
manifest must exist, be a JSON object with ``uuid``, ``cluster_id``, ``files`` and ``date``,
and every file it lists must be in the payload.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from costflow.errors import SourceError

MANIFEST = "manifest.json"
REQUIRED_KEYS = ("uuid", "cluster_id", "files", "date")


@dataclass(frozen=True)
class Payload:
    """A payload opened on local disk: its manifest facts and the report files it lists."""

    source: str             # what the user named (the directory or the .tar.gz)
    root: Path              # the directory holding manifest.json
    uuid: str
    cluster_id: str
    date: datetime
    files: tuple[Path, ...]  # in manifest order, each inside ``root``

    def uri(self, path: Path) -> str:
        """How a report file is named in errors and lineage: the source, then the member."""
        return f"{self.source}!{path.relative_to(self.root).as_posix()}"


@contextmanager
def open_payload(source: str | os.PathLike[str]) -> Iterator[Payload]:
    """The payload at ``source`` (a directory or a ``.tar.gz``), extracted safely when a tar.

    Raises:
        SourceError: no such path, an unsafe tar member, no manifest, a bad manifest, or a
            listed file missing from the payload.
    """
    path = Path(source)
    text = os.fspath(source)
    if path.is_dir():
        yield _payload(text, path)
        return
    if not path.is_file():
        raise SourceError(text, "no such file or directory.",
                          expected="a payload directory or .tar.gz with manifest.json")
    with tempfile.TemporaryDirectory(prefix="costflow-ocp-") as tmp:
        _extract(text, Path(tmp))
        yield _payload(text, _manifest_dir(text, Path(tmp)))


def _extract(source: str, into: Path) -> None:
    try:
        archive = tarfile.open(source, "r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as err:
        raise SourceError(source, f"is not a readable tar archive ({err}).",
                          expected="a .tar.gz payload of the koku-metrics-operator") from None
    with archive:
        members = archive.getmembers()
        for member in members:
            _check_member(source, member)
        for member in members:
            if member.isdir():
                (into / member.name).mkdir(parents=True, exist_ok=True)
                continue
            target = into / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = archive.extractfile(member)
            if handle is None:  # _check_member admits only files and directories
                raise SourceError(source, f"member {member.name!r} has no contents.")
            with handle, open(target, "wb") as out:
                while chunk := handle.read(1 << 20):
                    out.write(chunk)


def _check_member(source: str, member: tarfile.TarInfo) -> None:
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        problem = "has an absolute path"
    elif ".." in parts or "\\" in name:
        problem = "climbs out of the payload with '..' (or uses backslashes)"
    elif member.issym() or member.islnk():
        problem = "is a link"
    elif not (member.isfile() or member.isdir()):
        problem = "is neither a file nor a directory"
    else:
        return
    raise SourceError(source, f"tar member {name!r} {problem}; the payload was refused and "
                      "nothing was extracted.",
                      expected="plain files under one directory (manifest.json and CSVs)")


def _manifest_dir(source: str, root: Path) -> Path:
    """The directory holding manifest.json: the root, or the one directory under it."""
    if (root / MANIFEST).is_file():
        return root
    found = sorted(p.parent for p in root.rglob(MANIFEST) if p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise SourceError(source, f"has no {MANIFEST}; a usage report without its manifest "
                          "cannot be attributed to a cluster.",
                          expected=f"{MANIFEST} with uuid, cluster_id, files and date")
    raise SourceError(source, f"holds {len(found)} {MANIFEST} files; give one payload at a time.")


def _payload(source: str, root: Path) -> Payload:
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise SourceError(source, f"has no {MANIFEST}; a usage report without its manifest "
                          "cannot be attributed to a cluster.",
                          expected=f"{MANIFEST} with uuid, cluster_id, files and date")
    where = f"{source}!{MANIFEST}" if source != os.fspath(root) else os.fspath(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise SourceError(where, f"is not JSON ({err}).") from None
    if not isinstance(manifest, dict):
        raise SourceError(where, "is not a JSON object.")
    missing = [k for k in REQUIRED_KEYS if not manifest.get(k)]
    if missing:
        raise SourceError(where, f"lacks {', '.join(missing)}.",
                          expected=f"the keys {', '.join(REQUIRED_KEYS)}")
    files = manifest["files"]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise SourceError(where, "'files' is not a list of file names.", column="files")
    for key in ("uuid", "cluster_id", "date"):
        if not isinstance(manifest[key], str):
            raise SourceError(where, f"{key!r} is not a string.", column=key)
    try:
        stamp = datetime.fromisoformat(manifest["date"].replace("Z", "+00:00"))
    except ValueError:
        raise SourceError(where, f"'date' {manifest['date']!r} is not a date-time.",
                          column="date", expected="ISO 8601, e.g. 2026-10-02T00:00:00Z") from None
    listed = []
    for name in files:
        # The operator lists bare file names; a path is taken as its last part, never followed.
        base = PurePosixPath(name.replace("\\", "/")).name
        if base in ("", ".", ".."):
            raise SourceError(where, f"lists {name!r}, which is not a file name.", column="files")
        path = root / base
        if not path.is_file():
            raise SourceError(where, f"lists {name!r}, which is not in the payload.",
                              column="files", expected="every listed file present")
        listed.append(path)
    return Payload(source, root, manifest["uuid"], manifest["cluster_id"], stamp, tuple(listed))
