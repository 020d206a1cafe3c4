"""Read a planned file only as it was planned: size and sha256 checked over the bytes read.

Why: the ledger records each file's size and sha256 from planning, but the reader opens the file
again later (on another machine, on Dataflow). A file still being written, or replaced, between
the two would be loaded as it was at the end of the read while the ledger claims the planned
bytes. So every reader opens its planned file through `open_verified` and calls
`VerifiedFile.verify` once it has consumed the file: the run fails with a `SourceError` ("changed
while the run read it") unless the bytes read are exactly the planned ones. A run that succeeds
therefore loaded exactly the bytes whose size and sha256 the ledger holds.

Two ways of reading are covered:

* **Streaming** (CSV, CSV.gz, JSON lines, Avro): the reader consumes the file front to back, so
  the hash is computed over exactly the bytes it consumed, as it consumes them (no second read).
  ``verify`` hashes whatever the reader left unread (nothing, usually) and compares.
* **Seekable** (Parquet reads its footer first, then jumps between column chunks): hashing what
  such a reader consumes in the order it consumes it cannot be compared with a file hash. The
  whole file is hashed once when it is opened (one extra sequential read, before any row is
  read) and compared with the plan; the local file's identity, size and modification time are
  taken right after that and compared again in ``verify``, which catches a change made while
  the reader jumped around. Object stores pin the object version instead where they can
  (`costflow.providers.aws.s3` reads with ``If-Match`` on the ETag it planned).
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import IO, Any

from costflow.errors import SourceError
from costflow.sources.contract import SourceCatalog, SourceFile

HASH_CHUNK_BYTES = 4 << 20


def changed_error(source: SourceFile, what: str) -> SourceError:
    return SourceError(
        source.uri, f"changed while the run read it: {what}. Nothing from this run was "
        "committed.", expected=f"the file as planned ({source.size_bytes:,} bytes, sha256 "
        f"{source.sha256[:16]}...) until the run ends: ingest a finished delivery (or a copy "
        "of it), then rerun")


class VerifiedFile(io.RawIOBase):
    """A planned file's bytes, hashed as they are read; see the module docstring."""

    def __init__(self, raw: IO[bytes], source: SourceFile, *, seekable: bool = False) -> None:
        super().__init__()
        self._raw = raw
        self.source = source
        self._digest = hashlib.sha256()
        self._hashed = 0          # bytes [0, _hashed) are in the digest
        self._pos = 0
        self._whole_first = seekable
        self._stat: tuple[int, int, int] | None = None
        if seekable:
            self._hash_to_end()
            self._compare()
            self._stat = _local_stat(raw)
            raw.seek(0)

    # -- io.RawIOBase ------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self._raw.seekable())

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._raw.seek(offset, whence)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        if not self._whole_first and self._pos == self._hashed:
            self._digest.update(data)
            self._hashed += len(data)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()

    # -- the check ---------------------------------------------------------------------------

    def verify(self) -> None:
        """Raise `SourceError` unless the bytes read are exactly the planned ones.

        Call it after the reader consumed the file. Bytes the reader left unread are read and
        hashed here, so a reader that stops before the end (a gzip trailer) still verifies.
        """
        if self._whole_first:
            if self._stat is not None and _local_stat(self._raw) != self._stat:
                raise changed_error(self.source, "its size or modification time changed "
                                    "after it was opened")
            return
        self._raw.seek(self._hashed)
        self._pos = self._hashed
        self._hash_to_end()
        self._compare()

    def _hash_to_end(self) -> None:
        while chunk := self._raw.read(HASH_CHUNK_BYTES):
            self._digest.update(chunk)
            self._hashed += len(chunk)
        self._pos = self._hashed

    def _compare(self) -> None:
        size, sha = self._hashed, self._digest.hexdigest()
        if size != self.source.size_bytes:
            raise changed_error(self.source, f"it was planned with {self.source.size_bytes:,} "
                                f"bytes and {size:,} bytes were read")
        if sha != self.source.sha256:
            raise changed_error(self.source, f"the {size:,} bytes read have sha256 "
                                f"{sha[:16]}..., not the planned {self.source.sha256[:16]}...")


def _local_stat(raw: IO[bytes]) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a local file handle; None for other streams."""
    try:
        st = os.fstat(raw.fileno())
    except (OSError, AttributeError, io.UnsupportedOperation, ValueError):
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def open_verified(source: SourceFile, catalog: SourceCatalog, *,
                  seekable: bool = False) -> VerifiedFile:
    """The planned file through its scheme's opener, checked against the plan (see above).

    ``seekable``: the reader jumps around (Parquet); the file is hashed whole when opened.
    """
    return VerifiedFile(catalog.open(source.uri), source, seekable=seekable)
