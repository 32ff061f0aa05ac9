"""Download, verify and unpack the paper's benchmarks and the course's real sets: resumable, checksummed, safe.

Used by ``data_scripts/download.py`` and ``python -m course_utils download`` (this module exposes
``add_arguments(parser)`` and ``run(args)``). Only the standard library (``urllib``) and ``tqdm`` are used.
``download.py course`` fetches the real sets the notebooks use (:data:`COURSE_SETS`), printing their sizes first.

What happens to one file (an :class:`~course_utils.datasets.specs.Artifact`)
---------------------------------------------------------------------------
1. It is fetched into ``<dataset folder>/downloads/<file>.part``. If a ``.part`` is already there (an earlier run
   was interrupted) the download continues from its end with an HTTP ``Range`` request; a connection that drops
   mid-way is resumed the same way, a few times, before giving up. A server that ignores ``Range`` just restarts.
   A host that does not connect within 15 s, or a server or proxy that sends nothing for 30 s (before answering
   or mid-file), ends that attempt at once with a message; the bytes received stay in the ``.part`` for the next
   run. Both limits can be changed (``--connect-timeout`` / ``--read-timeout``, or the environment variables
   ``COURSE_DOWNLOAD_CONNECT_TIMEOUT`` / ``COURSE_DOWNLOAD_READ_TIMEOUT``, in seconds).
2. Only a complete file is renamed to its final name; its SHA-256 (or, where only that was published, its MD5) is
   checked. A mismatch deletes the file and says what to do. With no published checksum the computed SHA-256 is
   printed with a warning, so that it can be recorded in ``specs.py``; nothing pretends to be verified.
3. Archives (tar in any compression, zip) are extracted into a hidden temporary folder, refusing any member with an
   absolute path, a ``..`` component, a link pointing outside, a path through a member that is a file, or members
   adding up to more than :func:`expansion_limit` (a multiple of the artifact's expected unpacked size, else of
   the archive's own size); the result is then moved into place. A damaged archive (a bad CRC, a cut stream)
   is an :class:`ExtractionError` that names it and says what to do; the temporary folder is always removed, so an
   interrupted or failed extraction never leaves a half-extracted tree that a loader would read as valid.
4. A small marker ``downloads/<file>.done`` records success; re-running skips finished files.

At the end the dataset's file counts are checked. Dead links, HTTP errors, timeouts and a missing network end
with a message naming every URL tried, the mirrors, and how to download by hand into the right folder, never with a
stack trace.
"""

from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import http.client
import json
import os
import shutil
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .. import config
from .images import atomic_path
from .specs import (
    DOWNLOADS,
    SPECS,
    Artifact,
    CountCheck,
    DatasetSpec,
    downloaded_copy,
    in_profile,
    marker,
    shared_copy,
)

USER_AGENT = "off-the-shelf-course/0.1 (+dataset downloader; python urllib)"
CHUNK_SIZE = 1 << 20
CONNECT_TIMEOUT_ENV = "COURSE_DOWNLOAD_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "COURSE_DOWNLOAD_READ_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 15.0  # seconds to establish a connection
DEFAULT_READ_TIMEOUT = 30.0  # seconds without a byte (waiting for the answer, or mid-file) before giving up
# Extraction refuses archives whose members add up to more than EXPANSION_MARGIN x the artifact's expected unpacked
# size or, for artifacts without one, EXPANSION_RATIO x the archive's size + EXPANSION_FLOOR (text compresses ~10x;
# JPEG archives unpack to about their own size; a zip bomb expands by 1,000x and more).
EXPANSION_MARGIN = 3.0
EXPANSION_RATIO = 20
EXPANSION_FLOOR = 16 << 20
# The real sets the notebooks use, fetched by ``download.py course``: the demo profile's downloadable sets (their
# records' ``profiles``); OPTIONAL_COURSE_SETS are used when present.
COURSE_SETS = tuple(name for name in in_profile("demo") if SPECS[name].kind != "builtin")
OPTIONAL_COURSE_SETS = ("flowers102",)

Log = Callable[[str], None]


class DownloadError(RuntimeError):
    """A file could not be fetched from any of its URLs; the message says what to do."""


class ChecksumError(RuntimeError):
    """A downloaded file does not have the published checksum (it has been deleted)."""


class ExtractionError(RuntimeError):
    """An archive is unsafe (path traversal, links leaving the folder) or not an archive at all."""


class CountMismatchError(RuntimeError):
    """After download, the dataset folder does not hold the expected number of files."""


# --- fetching ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection (``connect``) and for the next byte once connected (``read``)."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT


def _seconds(value: float | None, env: str, default: float) -> float:
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{env}={raw!r} is not a number of seconds.") from None
    if not value > 0:
        raise ValueError(f"A download timeout must be a positive number of seconds; got {value} (or set {env}).")
    return float(value)


def timeouts(connect: float | None = None, read: float | None = None) -> Timeouts:
    """The timeouts to use: the arguments, else ``$COURSE_DOWNLOAD_CONNECT_TIMEOUT`` / ``..._READ_TIMEOUT``, else
    15 s and 30 s. Raises ``ValueError`` for a value that is not a positive number."""
    return Timeouts(_seconds(connect, CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT),
                    _seconds(read, READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT))


class _ReadTimeoutMixin:
    """Connect under the connection's ``timeout`` (the connect timeout), then wait ``read_timeout`` per read."""

    def __init__(self, *args, read_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()  # TCP connect, proxy tunnel and TLS handshake, all under the connect timeout
        self.sock.settimeout(self.read_timeout)


class _HTTPConnection(_ReadTimeoutMixin, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ReadTimeoutMixin, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    def http_open(self, req: urllib.request.Request):
        return self.do_open(functools.partial(_HTTPConnection, read_timeout=self.read_timeout), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    def https_open(self, req: urllib.request.Request):
        return self.do_open(functools.partial(_HTTPSConnection, read_timeout=self.read_timeout), req,
                            context=self._context)


def _open(url: str, start: int, limits: Timeouts):
    """The response to a GET of ``url`` (from byte ``start``); raises :class:`DownloadError` on a timeout."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if start > 0:
        request.add_header("Range", f"bytes={start}-")
    opener = urllib.request.build_opener(_HTTPHandler(limits.read), _HTTPSHandler(limits.read))
    try:
        return opener.open(request, timeout=limits.connect)
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise DownloadError(
                f"no connection within {limits.connect:g} s (a dead or overloaded host, or a proxy/firewall that "
                f"drops the connection; --connect-timeout or ${CONNECT_TIMEOUT_ENV} waits longer)"
            ) from err
        raise
    except TimeoutError as err:  # connected, but the answer never came
        raise DownloadError(
            f"connected, but no answer within {limits.read:g} s (a server or proxy that does not answer; "
            f"--read-timeout or ${READ_TIMEOUT_ENV} waits longer)"
        ) from err


def _total_size(response, start: int) -> int | None:
    """Size of the whole file from a 200 or 206 response, or None when the server does not say."""
    content_range = response.headers.get("Content-Range")  # "bytes 100-999/1000"
    if content_range and "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    if length is None:
        return None
    return int(length) + (start if getattr(response, "status", 200) == 206 else 0)


def download_file(
    url: str,
    dest: str | Path,
    *,
    retries: int = 3,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    progress: bool = True,
    retry_wait: float = 1.0,
) -> Path:
    """Fetch ``url`` to ``dest``, resuming from ``dest + '.part'`` and after dropped connections.

    Returns ``dest``. Raises :class:`urllib.error.HTTPError` / :class:`urllib.error.URLError` when the server
    refuses or cannot be reached (callers turn those into a :class:`DownloadError` naming the URL), and
    :class:`DownloadError` when the connection keeps dropping after ``retries`` resumptions, or when no connection
    comes within ``connect_timeout`` or no byte within ``read_timeout`` seconds (see :func:`timeouts` for the
    defaults). A stall is not retried: the bytes received stay in the ``.part`` and the next call resumes there.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    limits = timeouts(connect_timeout, read_timeout)
    failures = 0
    while not (attempt := _attempt(url, part, limits, dest.name, progress)).complete:
        if attempt.restart:
            continue
        failures += 1
        if failures > retries:
            raise DownloadError(
                f"The download of {url} was cut off {failures} times (last: {attempt.cut}); {part.stat().st_size} of "
                f"{attempt.total or '?'} bytes are kept in {part} and the next run resumes from there."
            )
        time.sleep(retry_wait)
    size = part.stat().st_size
    if attempt.total is not None and size > attempt.total:
        part.unlink()
        raise DownloadError(f"{url} sent {size} bytes for a {attempt.total}-byte file; the partial file was deleted.")
    os.replace(part, dest)
    return dest


@dataclass(frozen=True)
class _Attempt:
    """What one connection of :func:`download_file` achieved: the ``.part`` is ``complete``, or the connection was
    cut (``cut`` says how), or a stale ``.part`` was deleted and the download must ``restart`` at once."""

    total: int | None = None  # the file's size in bytes, when the server said
    cut: str | None = None
    complete: bool = False
    restart: bool = False


def _attempt(url: str, part: Path, limits: Timeouts, label: str, progress: bool) -> _Attempt:
    """One connection: resume ``part`` from its size (or from 0 when the server ignores Range) and copy the body."""
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start, limits)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start > 0:  # Range not satisfiable: usually the .part is already complete
            if _size_from_416(err) == start:
                return _Attempt(total=start, complete=True)
            part.unlink()  # a stale .part longer than the file: start again
            return _Attempt(restart=True)
        raise
    with response:
        if start > 0 and getattr(response, "status", 200) != 206:  # the server ignored Range: start again
            start = 0
        total = _total_size(response, start)
        try:
            cut = _copy_stream(response, part, start, total, label, progress)
        except TimeoutError as err:
            raise DownloadError(
                f"the server stopped sending: nothing for {limits.read:g} s after {part.stat().st_size:,} of "
                f"{f'{total:,}' if total else '?'} bytes. The bytes received are kept in {part} and the next "
                "run resumes from there."
            ) from err
    if cut is None and total is not None and part.stat().st_size < total:
        cut = "the stream ended early"
    return _Attempt(total=total, cut=cut, complete=cut is None)


def _copy_stream(response, part: Path, start: int, total: int | None, label: str, progress: bool) -> str | None:
    """Append (or, from 0, write) the response body to ``part``; the reason if the connection broke, else None.

    A read timeout (a stalled server) is raised as ``TimeoutError`` rather than returned: it is not retried.
    """
    with tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
              disable=not progress, leave=False) as bar, open(part, "ab" if start > 0 else "wb") as out:
        read = getattr(response, "read1", response.read)  # read1: what has arrived, so a stall loses nothing
        try:
            while chunk := read(CHUNK_SIZE):
                out.write(chunk)
                bar.update(len(chunk))
        except TimeoutError:
            raise
        except (OSError, http.client.HTTPException) as err:  # reset, IncompleteRead
            return f"{type(err).__name__}: {err}"
    return None


def _size_from_416(err: urllib.error.HTTPError) -> int | None:
    content_range = err.headers.get("Content-Range", "") if err.headers else ""
    if "/" in content_range:
        tail = content_range.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else None
    return None


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect ({err.reason}): no network, a dead host, or a proxy/firewall in the way"
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err)


def fetch(artifact: Artifact, folder: Path, *, dataset: str = "", progress: bool = True, retries: int = 3,
          connect_timeout: float | None = None, read_timeout: float | None = None,
          log: Log = print) -> tuple[Path, str]:
    """Download ``artifact`` into ``folder`` from its first URL that works *and* passes the checksum.

    Returns ``(path, sha256)``. A complete file already at ``folder / artifact.filename`` (e.g. downloaded by hand)
    is verified and used. A mirror serving other bytes is skipped for the next URL; when every URL fails, the
    :class:`DownloadError` lists each one with its reason and says how to download by hand.
    """
    dest = folder / artifact.filename
    if dest.is_file():
        log(f"{artifact.filename}: found {dest}, not downloading again")
        return dest, verify(dest, artifact, dataset=dataset, log=log)
    failures = []
    for k, url in enumerate(artifact.urls):
        size = f" (about {human_size(artifact.size)})" if artifact.size else ""
        log(f"{artifact.filename}: downloading {url}{size}")
        try:
            download_file(url, dest, retries=retries, connect_timeout=connect_timeout, read_timeout=read_timeout,
                          progress=progress)
            return dest, verify(dest, artifact, dataset=dataset, log=log)
        except ChecksumError:
            if len(artifact.urls) == 1:
                raise
            reason = "served a file with the wrong checksum (deleted)"
        except (OSError, http.client.HTTPException, DownloadError) as err:  # URLError is an OSError
            reason = _describe(err)
        failures.append(f"  {url}: {reason}")
        log(f"{artifact.filename}: failed ({reason})" + ("; trying the next mirror" if k + 1 < len(artifact.urls)
                                                          else ""))
    raise DownloadError(
        f"Could not download {artifact.filename} from any of its URLs:\n" + "\n".join(failures) + "\n"
        "What to do: check your network or proxy and run the command again (it resumes); or download the file by "
        "hand from one of the URLs above (or another mirror with the same checksum) and save it as\n"
        f"  {dest}\nthen run the command again: it will verify and extract that file."
    )


# --- verifying ---------------------------------------------------------------------------------------------------


def file_digests(path: Path) -> tuple[str, str]:
    """``(sha256, md5)`` hex digests of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def verify(path: Path, artifact: Artifact, *, dataset: str = "", log: Log = print) -> str:
    """Check ``path`` against the artifact's SHA-256 (else MD5); return the computed SHA-256.

    On a mismatch the file is deleted and :class:`ChecksumError` explains what to do. With no published checksum
    a warning carries the computed SHA-256 so that it can be recorded.
    """
    sha, md5 = file_digests(path)
    expected, got, kind = (
        (artifact.sha256, sha, "sha256") if artifact.sha256 else (artifact.md5, md5, "md5") if artifact.md5
        else (None, sha, "sha256")
    )
    if expected is None:
        log(
            f"WARNING: {artifact.filename}: no published checksum; computed sha256={sha} (size {path.stat().st_size} "
            f"bytes). Nothing was verified: record it in course_utils/datasets/specs.py if this copy is the right one."
        )
        return sha
    if got.lower() != expected.lower():
        path.unlink()
        command = f"python data_scripts/download.py {dataset}" if dataset else "the download command"
        raise ChecksumError(
            f"{artifact.filename} is corrupt or a different version: expected {kind}={expected}, got {got}. The file "
            f"was deleted. What to do: run {command} again (a transfer error is the usual cause); if it fails again, "
            "the server now serves another file: try another mirror, or check the dataset's home page."
        )
    log(f"{artifact.filename}: {kind} OK")
    return sha


# --- extracting --------------------------------------------------------------------------------------------------


def _unsafe_name(name: str) -> str | None:
    """Why an archive member name is unsafe, or None when it is fine."""
    if not name:
        return None
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "'..' in the path"
    return None


def _link_escapes(member: tarfile.TarInfo) -> bool:
    """True when a tar symlink / hard link would point outside the extraction folder."""
    target = member.linkname.replace("\\", "/")
    if target.startswith("/"):
        return True
    base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath(".")
    depth = 0
    for part in (base / target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _check_nesting(archive: Path, names: list[str], files: set[str]) -> None:
    """Refuse a member whose path runs through another member that is a file (``a`` then ``a/b``)."""
    for name in names:
        for parent in PurePosixPath(name.replace("\\", "/")).parents:
            if str(parent) in files:
                raise ExtractionError(
                    f"Refusing to extract {archive.name}: member {name!r} lies inside {str(parent)!r}, which the "
                    f"archive also holds as a file: it is damaged or not the expected file. Delete {archive} and "
                    "download again."
                )


def _check_tar(archive: Path, members: list[tarfile.TarInfo]) -> None:
    for m in members:
        if why := _unsafe_name(m.name):
            raise ExtractionError(f"Refusing to extract {archive.name}: member {m.name!r} has an {why}.")
        if (m.issym() or m.islnk()) and _link_escapes(m):
            raise ExtractionError(
                f"Refusing to extract {archive.name}: link {m.name!r} -> {m.linkname!r} points outside the folder."
            )
        if m.ischr() or m.isblk() or m.isfifo():
            raise ExtractionError(f"Refusing to extract {archive.name}: member {m.name!r} is a device or FIFO.")
    files = {str(PurePosixPath(m.name)) for m in members if not m.isdir()}
    _check_nesting(archive, [m.name for m in members], files)


def _check_zip(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        if why := _unsafe_name(info.filename):
            raise ExtractionError(f"Refusing to extract {archive.name}: member {info.filename!r} has an {why}.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ExtractionError(f"Refusing to extract {archive.name}: member {info.filename!r} is a symbolic link.")
    files = {str(PurePosixPath(i.filename)) for i in infos if not i.is_dir()}
    _check_nesting(archive, [i.filename for i in infos], files)


def expansion_limit(archive_size: int, unpacked_size: int | None = None) -> int:
    """The most bytes an archive may expand to: :data:`EXPANSION_MARGIN` x ``unpacked_size`` when the artifact
    states one, else :data:`EXPANSION_RATIO` x ``archive_size`` + :data:`EXPANSION_FLOOR`."""
    if unpacked_size:
        return int(EXPANSION_MARGIN * unpacked_size)
    return EXPANSION_RATIO * archive_size + EXPANSION_FLOOR


def _check_size(archive: Path, total: int, limit: int) -> None:
    if total > limit:
        raise ExtractionError(
            f"Refusing to extract {archive.name}: its members add up to {total / 2**20:,.1f} MiB, more than the "
            f"{limit / 2**20:,.1f} MiB allowed for a {archive.stat().st_size / 2**20:,.2f} MiB archive (a damaged "
            f"or malicious archive, or not the expected file). Delete {archive} and download again; if it is the "
            "right file, report it so that its expected size is recorded in course_utils/datasets/specs.py."
        )


def _merge_into(src: Path, dst: Path) -> None:
    """Move everything in ``src`` into ``dst``, merging folders that already exist (e.g. two VOC tars)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir():
            _merge_into(entry, target)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)


def _extract_into(archive: Path, tmp: Path, limit: int) -> list[str]:
    """Check every member of ``archive``, then extract it into the new folder ``tmp``; the member names."""
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            _check_tar(archive, members)
            _check_size(archive, sum(m.size for m in members if m.isfile()), limit)
            tmp.mkdir()
            # the stdlib's own "data" filter too, as defence in depth, where this Python has it (3.10.12+)
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        return [m.name for m in members]
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_zip(archive, infos)
            _check_size(archive, sum(i.file_size for i in infos), limit)
            tmp.mkdir()
            zf.extractall(tmp)
        return [i.filename for i in infos]
    raise ExtractionError(
        f"{archive} is neither a tar nor a zip archive (an HTML error page saved under the archive's name?). "
        "Delete it and download again."
    )


def safe_extract(archive: str | Path, dest: str | Path, *, max_bytes: int | None = None) -> list[str]:
    """Extract a tar (any compression) or zip ``archive`` into ``dest`` and return the member names.

    Every member is checked first (absolute paths, ``..``, links leaving ``dest``, device files, a path through a
    member that is a file) and so is their total size (at most ``max_bytes``, default :func:`expansion_limit` of
    the archive's size): one failed check rejects the whole archive with :class:`ExtractionError` and nothing is
    written. Extraction goes to a temporary folder inside ``dest`` that is moved into place only when complete; a
    damaged archive, a full disk or any other failure removes it and raises :class:`ExtractionError`.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".extracting-{archive.name}"
    if tmp.exists():
        shutil.rmtree(tmp)  # left over by an interrupted run
    limit = max_bytes if max_bytes is not None else expansion_limit(archive.stat().st_size)
    try:
        names = _extract_into(archive, tmp, limit)
        _merge_into(tmp, dest)
    except ExtractionError:
        raise
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ExtractionError(
                f"The disk is full while extracting {archive.name} into {dest}: it needs at least the archive's "
                f"own size ({archive.stat().st_size / 2**20:,.0f} MiB) free there. Free some space (or use --root "
                "on another disk) and run the command again: the download is kept."
            ) from err
        raise ExtractionError(_damaged(archive, err)) from err
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, ValueError) as err:
        raise ExtractionError(_damaged(archive, err)) from err  # TarError includes the data filter's FilterError
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return names


def _damaged(archive: Path, err: BaseException) -> str:
    return (f"Cannot extract {archive.name} ({type(err).__name__}: {err}): the archive is damaged or unsafe. "
            f"Delete {archive} and download again.")


# --- whole datasets ----------------------------------------------------------------------------------------------


def check_counts(root: Path, checks: tuple[CountCheck, ...]) -> tuple[list[str], list[str]]:
    """``(errors, warnings)``: one line per count in ``checks`` that ``root`` does not match."""
    errors, warnings = [], []
    for check in checks:
        if check.lines:
            matches = sorted(root.glob(check.pattern))
            found = (
                sum(1 for line in matches[0].read_text(errors="replace").splitlines() if line.strip())
                if matches else None
            )
            what = f"lines in {check.pattern}"
        else:
            found = sum(1 for p in root.glob(check.pattern) if p.is_file())
            what = f"files matching {check.pattern}"
        if found == check.count:
            continue
        line = (
            f"{root}: {check.pattern} is missing" if found is None
            else f"{root}: expected {check.count} {what}, found {found}"
        )
        (errors if check.strict else warnings).append(line)
    return errors, warnings


def prepare(
    spec: DatasetSpec | str,
    data_root: str | Path | None = None,
    *,
    keep_archives: bool = False,
    progress: bool = True,
    retries: int = 3,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    log: Log = print,
) -> Path:
    """Download, verify and extract every artifact of ``spec``, check its file counts, return the dataset folder.

    ``data_root`` is the parent of all dataset folders (default ``config.data_dir()``). Finished artifacts (marker
    present) are skipped, so the call is cheap when the data are already there.
    """
    spec = SPECS[spec] if isinstance(spec, str) else spec
    if spec.kind != "download":
        raise DownloadError(_no_download_message(spec, data_root))
    folder = _dataset_folder(spec, data_root)
    downloads = folder / DOWNLOADS
    downloads.mkdir(parents=True, exist_ok=True)
    for artifact in spec.artifacts:
        done = marker(folder, artifact)
        if done.is_file():
            log(f"{artifact.filename}: already done")
            continue
        path, sha = fetch(artifact, downloads, dataset=spec.name, progress=progress, retries=retries,
                          connect_timeout=connect_timeout, read_timeout=read_timeout, log=log)
        if artifact.extract:
            log(f"{artifact.filename}: extracting into {folder / artifact.extract_to}")
            safe_extract(path, folder / artifact.extract_to,
                         max_bytes=expansion_limit(path.stat().st_size, artifact.unpacked_size))
            if not keep_archives:
                path.unlink()
        else:
            os.replace(path, folder / artifact.filename)
        with atomic_path(done) as tmp:
            tmp.write_text(json.dumps({"file": artifact.filename, "sha256": sha}) + "\n")
    errors, warnings = check_counts(folder, spec.checks)
    for line in warnings:
        log(f"WARNING: {line} (count taken from the literature, not checked against the files)")
    if errors:
        raise CountMismatchError(
            "The download finished but the files are incomplete:\n  " + "\n  ".join(errors) + "\nWhat to do: delete "
            f"{downloads} and run python data_scripts/download.py {spec.name} again."
        )
    log(f"{spec.name}: ready in {folder}")
    return folder


def verify_only(spec: DatasetSpec | str, data_root: str | Path | None = None, *, log: Log = print) -> bool:
    """Check an existing dataset folder without downloading: kept files' checksums and the file counts."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    folder = _dataset_folder(spec, data_root)
    if not folder.is_dir():
        log(f"{spec.name}: {folder} does not exist. {spec.download_command}")
        return False
    ok = True
    for artifact in spec.artifacts:
        kept = folder / artifact.filename
        if not artifact.extract and kept.is_file() and (artifact.sha256 or artifact.md5):
            sha, md5 = file_digests(kept)
            good = sha == artifact.sha256 if artifact.sha256 else md5 == artifact.md5
            log(f"{artifact.filename}: {'checksum OK' if good else 'CHECKSUM MISMATCH'}")
            ok &= good
    errors, warnings = check_counts(folder, spec.checks)
    for line in errors:
        log(f"ERROR: {line}")
    for line in warnings:
        log(f"WARNING: {line}")
    ok &= not errors
    log(f"{spec.name}: {'OK' if ok else 'problems found'} in {folder}")
    return ok


def _dataset_folder(spec: DatasetSpec, data_root: str | Path | None) -> Path:
    """Where ``spec``'s files go: ``data_root`` (default the data dir) / the spec's folder."""
    return Path(data_root if data_root is not None else config.data_dir()).expanduser() / spec.folder


def _no_download_message(spec: DatasetSpec, data_root: str | Path | None) -> str:
    if spec.kind == "manual":
        folder = _dataset_folder(spec, data_root)
        return f"{spec.title} has no working direct download.\n{spec.manual.replace('ROOT', str(folder))}"
    return f"{spec.title}: nothing to download ({spec.download_command})."


# --- the course's real sets --------------------------------------------------------------------------------------


def download_size(spec: DatasetSpec) -> tuple[int, bool]:
    """``(bytes, complete)``: the sum of the artifacts' sizes, and whether every artifact states one."""
    return sum(a.size or 0 for a in spec.artifacts), all(a.size for a in spec.artifacts)


def human_size(n_bytes: float) -> str:
    """``1.5 GB``, ``60 MB``, ``12 KB``: sizes as people read them (powers of 1,000)."""
    for unit, scale, digits in (("GB", 1e9, 1), ("MB", 1e6, 0), ("KB", 1e3, 0)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.{digits}f} {unit}"
    return f"{n_bytes:,.0f} bytes"


def _size_text(spec: DatasetSpec) -> str:
    size, complete = download_size(spec)
    return "about " + human_size(size) + ("" if complete else " + small files")


def course_plan(data_root: str | Path | None = None) -> tuple[list[str], list[DatasetSpec]]:
    """The lines ``download.py course`` prints first, and the specs it will download (those not yet here).

    A set with a shared copy is not downloaded: the course reads the shared copy first (see
    :func:`course_utils.datasets.specs.locate`).
    """
    lines = ["The course's real sets (the notebooks use each one's shared copy, else its download, else an "
             "embedded demo set):"]
    todo: list[DatasetSpec] = []
    for name in COURSE_SETS:
        spec = SPECS[name]
        if (copy := shared_copy(spec)) is not None:
            state = f"shared copy in {copy}: nothing to download"
        elif downloaded_copy(spec, data_root) is not None:
            state = f"already downloaded in {_dataset_folder(spec, data_root)}"
        else:
            state = f"to download: {_size_text(spec)} ({', '.join(a.filename for a in spec.artifacts)})"
            todo.append(spec)
        lines.append(f"  {name:<12} {spec.title}: {state}")
    total = sum(download_size(spec)[0] for spec in todo)
    where = config.data_dir() if data_root is None else data_root
    lines.append(f"Total to download: about {human_size(total)}, into {where}" if todo else "Nothing to download.")
    for name in OPTIONAL_COURSE_SETS:
        spec = SPECS[name]
        lines.append(f"Optional: {name} ({spec.title}, {_size_text(spec)}), used by notebook 06 when present: "
                     f"{spec.download_command}")
    return lines, todo


def download_course(data_root: str | Path | None = None, *, log: Log = print, **options) -> int:
    """``download.py course``: print the plan (sizes first), then download each missing set; 0 when all are ready.

    ``options`` go to :func:`prepare`. A set that fails is reported and the others are still downloaded.
    """
    lines, todo = course_plan(data_root)
    for line in lines:
        log(line)
    failed = []
    for spec in todo:
        log(f"== {spec.name}")
        try:
            prepare(spec, data_root, log=log, **options)
        except (DownloadError, ChecksumError, ExtractionError, CountMismatchError) as err:
            print(f"error: {spec.name}: {err}", file=sys.stderr)
            failed.append(spec.name)
    if failed:
        log(f"Not ready: {', '.join(failed)} (run the same command again: finished files are kept, downloads resume).")
        return 1
    log("The course's real sets are ready.")
    return 0


# --- command line ------------------------------------------------------------------------------------------------


def status(spec: DatasetSpec, data_root: str | Path | None = None) -> str:
    """``on disk``, ``shared copy``, ``missing``, ``manual`` or ``built in``."""
    if spec.kind == "builtin":
        return "built in"
    if downloaded_copy(spec, data_root) is not None:
        return "on disk"
    if shared_copy(spec) is not None:
        return "shared copy"
    return {"download": "missing", "manual": "manual"}[spec.kind]


def listing(data_root: str | Path | None = None) -> str:
    """The ``--list`` table: every dataset name, its status on disk, image count, size and title."""
    rows = [("name", "status", "images", "size", "title")]
    for spec in SPECS.values():
        images, size = spec.images.split(" (")[0].split(";")[0], spec.size_on_disk.split(" (")[0].split(";")[0]
        rows.append((spec.name, status(spec, data_root), images, size, spec.title))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows)
    return table + f"\n\ncourse: the real sets the notebooks use ({', '.join(COURSE_SETS)}): " \
                   "python data_scripts/download.py course"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``download``: ``NAME|course [--root DIR] [--list] [--verify-only] [--keep-archives] [--quiet]
    [--connect-timeout S] [--read-timeout S]``."""
    parser.add_argument("name", nargs="?", help="dataset to download (see --list), or 'course' for the course's "
                        f"real sets ({', '.join(COURSE_SETS)})")
    parser.add_argument("--root", help="parent folder of the datasets (default: $COURSE_DATA_DIR or the cache)")
    parser.add_argument("--list", action="store_true", help="list the datasets and whether they are on disk")
    parser.add_argument("--verify-only", action="store_true", help="check files already on disk, download nothing")
    parser.add_argument("--keep-archives", action="store_true", help="keep the archives after extraction")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--connect-timeout", type=float, default=None, metavar="S",
                        help=f"seconds to wait for a connection (default ${CONNECT_TIMEOUT_ENV} or "
                        f"{DEFAULT_CONNECT_TIMEOUT:g})")
    parser.add_argument("--read-timeout", type=float, default=None, metavar="S",
                        help=f"seconds without data before giving up; the next run resumes (default "
                        f"${READ_TIMEOUT_ENV} or {DEFAULT_READ_TIMEOUT:g})")


def run(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 1 when a download or check failed, 2 for a usage error."""
    if args.list:
        print(listing(args.root))
        return 0
    if not args.name:
        print("Give a dataset name, 'course', or --list to see them all.", file=sys.stderr)
        return 2
    try:
        timeouts(args.connect_timeout, args.read_timeout)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    options = dict(keep_archives=args.keep_archives, progress=not args.quiet,
                   connect_timeout=args.connect_timeout, read_timeout=args.read_timeout)
    if args.name == "course" and not args.verify_only:
        return download_course(args.root, **options)
    names = COURSE_SETS if args.name == "course" else (args.name,)
    if unknown := [n for n in names if n not in SPECS]:
        print(f"Unknown dataset {unknown[0]!r}. Known: {', '.join(SPECS)}, or course. (--list describes them.)",
              file=sys.stderr)
        return 2
    return max(_run_one(SPECS[name], args, options) for name in names)


def _run_one(spec: DatasetSpec, args: argparse.Namespace, options: dict) -> int:
    if spec.kind == "builtin":
        print(f"{spec.name}: {spec.download_command}.")
        return 0
    if args.verify_only or (spec.kind == "manual" and _dataset_folder(spec, args.root).is_dir()):
        return 0 if verify_only(spec, args.root) else 1
    try:
        prepare(spec, args.root, **options)
    except (DownloadError, ChecksumError, ExtractionError, CountMismatchError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``data_scripts/download.py``."""
    parser = argparse.ArgumentParser(
        prog="python data_scripts/download.py",
        description="Download, verify and extract one of the paper's benchmarks, or the course's real sets.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
