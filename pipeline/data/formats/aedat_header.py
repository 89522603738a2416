"""The text header shared by AEDAT 2.0 and 3.1: lines starting with '#', the first naming the version."""
from __future__ import annotations

from pathlib import Path

from pipeline.data.formats.errors import EventFileError


def read_file(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise EventFileError(f"{path}: cannot read ({e.strerror})") from None


def split_header(data: bytes, path: str | Path, version: bytes) -> tuple[list[bytes], int]:
    """Header lines and the byte offset where binary data starts; checks the '#!AER-DAT<version>' line."""
    if not data.startswith(b"#!AER-DAT" + version):
        found = data[:16].split(b"\n")[0]
        raise EventFileError(f"{path}: not an AEDAT {version.decode()} file (starts with {found!r})")
    lines, pos = [], 0
    while data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise EventFileError(f"{path}: header line at byte {pos} is not terminated")
        lines.append(data[pos:end].rstrip(b"\r"))
        pos = end + 1
        if lines[-1] == b"#!END-HEADER":
            break
    return lines, pos
