"""ZIP archives from uploads, checked before a byte is unpacked: one copy of every rule.

* :func:`open_zip` opens an upload as a ZIP or says it is not one;
* :func:`safe_entries` checks the archive as a whole (number of entries,
  names that would land outside the upload folder, passwords, total
  unpacked size) and returns its files, without folders, ``__MACOSX/`` and
  dotfiles;
* :func:`check_ratio` refuses an entry that unpacks to more than
  :data:`MAX_ZIP_RATIO` times its packed size (a ZIP bomb);
* :func:`read_entry` unpacks one entry, never more than it declares.

Used by the ZIP-of-images reader and by Label Studio's ZIP of tasks and images.
"""

from __future__ import annotations

import io
import re
import zipfile

from superintendent.ingest.common import mb, reason
from superintendent.ingest.prepared import ImportLimits
from superintendent.validation import ValidationError

MAX_ZIP_RATIO = 100


def entry_problem(name: str) -> str | None:
    """Why an entry name is unsafe (absolute path, drive letter, '..'), or None."""
    norm = name.replace("\\", "/")
    if not name:
        return "an empty name"
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "an absolute path"
    if ".." in norm.split("/"):
        return "a '..' path component"
    return None


def skipped(name: str) -> bool:
    """Entries that are not the user's files: ``__MACOSX/`` and dotfiles (at any depth)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def open_zip(data: bytes, what: str, hint: str) -> zipfile.ZipFile:
    """The upload as a ZIP archive; ``hint`` says what the archive should hold."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - zipfile raises several kinds on damaged archives
        raise ValidationError(f"{what} is not a readable ZIP archive ({reason(exc)}). {hint}") from None


def safe_entries(zf: zipfile.ZipFile, limits: ImportLimits, what: str) -> list[zipfile.ZipInfo]:
    """The archive's files, once the whole archive is checked: count, names, passwords, total size."""
    infos = zf.infolist()
    if len(infos) > limits.max_zip_entries:
        raise ValidationError(f"{what} has {len(infos):,} entries; the limit is {limits.max_zip_entries:,}. Split it into several ZIPs")
    unsafe = [(i.filename, p) for i in infos if (p := entry_problem(i.filename))]
    if unsafe:
        shown = "; ".join(f"{n!r} ({p})" for n, p in unsafe[:5])
        raise ValidationError(f"{what} has entries with unsafe names, which would be written outside the upload folder: {shown}. "
                              "Re-create the ZIP from inside the folder of files (relative paths only)")
    entries = [i for i in infos if not i.filename.endswith(("/", "\\")) and not skipped(i.filename)]
    encrypted = [i.filename for i in entries if i.flag_bits & 0x1]
    if encrypted:
        raise ValidationError(f"{what} is password-protected ({encrypted[0]!r}); upload a ZIP without a password")
    total = sum(i.file_size for i in entries)
    if total > limits.max_zip_total_uncompressed:
        raise ValidationError(f"{what} unpacks to {mb(total)}; the limit is {mb(limits.max_zip_total_uncompressed)}. "
                              "Split it into several ZIPs")
    return entries


def check_ratio(info: zipfile.ZipInfo, what: str) -> None:
    """Refuse an entry that unpacks to more than :data:`MAX_ZIP_RATIO` times its packed size."""
    if info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1) or (info.file_size and not info.compress_size):
        raise ValidationError(f"{what}: entry {info.filename!r} unpacks from {info.compress_size:,} to {info.file_size:,} bytes, "
                              f"more than {MAX_ZIP_RATIO}x; real images do not compress like that (a ZIP bomb?)")


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    """One entry's bytes: at most one byte more than declared is read, and a size mismatch or bad CRC is refused."""
    try:
        with zf.open(info) as f:
            raw = f.read(info.file_size + 1)
    except Exception as exc:  # noqa: BLE001 - bad CRC, unsupported compression, truncated data
        raise ValidationError(f"cannot unpack {info.filename!r} from {what} ({reason(exc)}); the ZIP is damaged, re-create it") from None
    if len(raw) != info.file_size:
        raise ValidationError(f"cannot unpack {info.filename!r} from {what}: it holds {len(raw):,} bytes, not the "
                              f"{info.file_size:,} its header declares; the ZIP is damaged, re-create it")
    return raw
