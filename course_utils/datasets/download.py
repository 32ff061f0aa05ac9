"""Download, verify and unpack the paper's benchmarks: resumable, checksummed, and safe to extract.

Used by ``data_scripts/download.py`` (and ready to be wired as ``python -m course_utils download``: this module
exposes ``add_arguments(parser)`` and ``run(args)``). Only the standard library (``urllib``) and ``tqdm`` are used.

What happens to one file (an :class:`~course_utils.datasets.specs.Artifact`)
---------------------------------------------------------------------------
1. It is fetched into ``<dataset folder>/downloads/<file>.part``. If a ``.part`` is already there (an earlier run
   was interrupted) the download continues from its end with an HTTP ``Range`` request; a connection that drops
   mid-way is resumed the same way, a few times, before giving up. A server that ignores ``Range`` just restarts.
2. Only a complete file is renamed to its final name; its SHA-256 (or, where only that was published, its MD5) is
   checked. A mismatch deletes the file and says what to do. With no published checksum the computed SHA-256 is
   printed with a warning, so that it can be recorded in ``specs.py``; nothing pretends to be verified.
3. Archives (tar in any compression, zip) are extracted into a hidden temporary folder, refusing any member with an
   absolute path, a ``..`` component, or a link pointing outside; the result is then moved into place. So an
   interrupted extraction never leaves a half-extracted tree that a loader would read as valid.
4. A small marker ``downloads/<file>.done`` records success; re-running skips finished files.

At the end the dataset's file counts are checked. Dead links, HTTP errors and a missing network end with a message
naming every URL tried, the mirrors, and how to download by hand into the right folder, never with a stack trace.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .. import config
from .images import atomic_path
from .specs import SPECS, Artifact, CountCheck, DatasetSpec, default_root

USER_AGENT = "off-the-shelf-course/0.1 (+dataset downloader; python urllib)"
CHUNK_SIZE = 1 << 20
DOWNLOADS = "downloads"

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


def _open(url: str, start: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if start > 0:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - URLs come from the specs


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
    timeout: float = 60.0,
    progress: bool = True,
    retry_wait: float = 1.0,
) -> Path:
    """Fetch ``url`` to ``dest``, resuming from ``dest + '.part'`` and after dropped connections.

    Returns ``dest``. Raises :class:`urllib.error.HTTPError` / :class:`urllib.error.URLError` when the server
    refuses or cannot be reached (callers turn those into a :class:`DownloadError` naming the URL), and
    :class:`DownloadError` when the connection keeps dropping after ``retries`` resumptions.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = 0
    while True:
        start = part.stat().st_size if part.exists() else 0
        try:
            response = _open(url, start, timeout)
        except urllib.error.HTTPError as err:
            if err.code == 416 and start > 0:  # Range not satisfiable: usually the .part is already complete
                total = _size_from_416(err)
                if total == start:
                    os.replace(part, dest)
                    return dest
                part.unlink()  # a stale .part longer than the file: start again
                continue
            raise
        with response:
            if start > 0 and getattr(response, "status", 200) != 206:  # the server ignored Range: start again
                start = 0
            total = _total_size(response, start)
            cut = _copy_stream(response, part, start, total, dest.name, progress)
        size = part.stat().st_size
        if cut is None and total is not None and size < total:
            cut = "the stream ended early"
        if cut is not None:
            failures += 1
            if failures > retries:
                raise DownloadError(
                    f"The download of {url} was cut off {failures} times (last: {cut}); {size} of {total or '?'} "
                    f"bytes are kept in {part} and the next run resumes from there."
                )
            time.sleep(retry_wait)
            continue
        if total is not None and size > total:
            part.unlink()
            raise DownloadError(f"{url} sent {size} bytes for a {total}-byte file; the partial file was deleted.")
        os.replace(part, dest)
        return dest


def _copy_stream(response, part: Path, start: int, total: int | None, label: str, progress: bool) -> str | None:
    """Append (or, from 0, write) the response body to ``part``; the reason if the connection broke, else None."""
    with tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
              disable=not progress, leave=False) as bar, open(part, "ab" if start > 0 else "wb") as out:
        try:
            while chunk := response.read(CHUNK_SIZE):
                out.write(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
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
          timeout: float = 60.0, log: Log = print) -> tuple[Path, str]:
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
        size = f" (about {artifact.size / 2**20:,.0f} MiB)" if artifact.size else ""
        log(f"{artifact.filename}: downloading {url}{size}")
        try:
            download_file(url, dest, retries=retries, timeout=timeout, progress=progress)
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


def _check_zip(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        if why := _unsafe_name(info.filename):
            raise ExtractionError(f"Refusing to extract {archive.name}: member {info.filename!r} has an {why}.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ExtractionError(f"Refusing to extract {archive.name}: member {info.filename!r} is a symbolic link.")


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


def safe_extract(archive: str | Path, dest: str | Path) -> list[str]:
    """Extract a tar (any compression) or zip ``archive`` into ``dest`` and return the member names.

    Every member is checked first (absolute paths, ``..``, links leaving ``dest``, device files): one bad member
    rejects the whole archive with :class:`ExtractionError` and nothing is written. Extraction goes to a temporary
    folder inside ``dest`` that is moved into place only when complete.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".extracting-{archive.name}"
    if tmp.exists():
        shutil.rmtree(tmp)  # left over by an interrupted run
    if tarfile.is_tarfile(archive):
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                _check_tar(archive, members)
                tmp.mkdir()
                # the stdlib's own "data" filter too, as defence in depth, where this Python has it (3.10.12+)
                tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        except (tarfile.TarError, EOFError, zlib.error) as err:  # TarError includes the filter's FilterError
            shutil.rmtree(tmp, ignore_errors=True)
            raise ExtractionError(
                f"Cannot extract {archive.name} ({type(err).__name__}: {err}): the archive is damaged or unsafe. "
                f"Delete {archive} and download again."
            ) from err
        names = [m.name for m in members]
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_zip(archive, infos)
            tmp.mkdir()
            zf.extractall(tmp)
            names = [i.filename for i in infos]
    else:
        raise ExtractionError(
            f"{archive} is neither a tar nor a zip archive (an HTML error page saved under the archive's name?). "
            "Delete it and download again."
        )
    try:
        _merge_into(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return names


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


def _marker(folder: Path, artifact: Artifact) -> Path:
    return folder / DOWNLOADS / f"{artifact.filename}.done"


def prepare(
    spec: DatasetSpec | str,
    data_root: str | Path | None = None,
    *,
    keep_archives: bool = False,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
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
        marker = _marker(folder, artifact)
        if marker.is_file():
            log(f"{artifact.filename}: already done")
            continue
        path, sha = fetch(artifact, downloads, dataset=spec.name, progress=progress, retries=retries,
                          timeout=timeout, log=log)
        if artifact.extract:
            log(f"{artifact.filename}: extracting into {folder / artifact.extract_to}")
            safe_extract(path, folder / artifact.extract_to)
            if not keep_archives:
                path.unlink()
        else:
            os.replace(path, folder / artifact.filename)
        with atomic_path(marker) as tmp:
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
    """Where ``spec``'s files live: below ``data_root`` (default the data dir); shared sets in the shared folder."""
    if spec.kind == "shared":
        return default_root(spec.name)
    return Path(data_root if data_root is not None else config.data_dir()).expanduser() / spec.folder


def _no_download_message(spec: DatasetSpec, data_root: str | Path | None) -> str:
    if spec.kind == "manual":
        folder = _dataset_folder(spec, data_root)
        return f"{spec.title} has no working direct download.\n{spec.manual.replace('ROOT', str(folder))}"
    return f"{spec.title}: nothing to download ({spec.download_command})."


# --- command line ------------------------------------------------------------------------------------------------


def status(spec: DatasetSpec, data_root: str | Path | None = None) -> str:
    """``on disk``, ``shared copy``, ``missing``, ``manual``, ``absent`` or ``built in``."""
    if spec.kind == "builtin":
        return "built in"
    folder = _dataset_folder(spec, data_root)
    if all(_marker(folder, a).is_file() for a in spec.artifacts) if spec.artifacts else folder.is_dir():
        return "on disk"
    shared = config.shared_data_dir()
    if spec.shared_copy and shared is not None and (shared / spec.shared_copy).is_dir():
        return "shared copy"
    return {"download": "missing", "manual": "manual", "shared": "absent"}[spec.kind]


def listing(data_root: str | Path | None = None) -> str:
    """The ``--list`` table: every dataset name, its status on disk, image count, size and title."""
    rows = [("name", "status", "images", "size", "title")]
    for spec in SPECS.values():
        images, size = spec.images.split(" (")[0].split(";")[0], spec.size_on_disk.split(" (")[0]
        rows.append((spec.name, status(spec, data_root), images, size, spec.title))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``download``: ``NAME [--root DIR] [--list] [--verify-only] [--keep-archives] [--quiet]``."""
    parser.add_argument("name", nargs="?", help="dataset to download (see --list)")
    parser.add_argument("--root", help="parent folder of the datasets (default: $COURSE_DATA_DIR or the cache)")
    parser.add_argument("--list", action="store_true", help="list the datasets and whether they are on disk")
    parser.add_argument("--verify-only", action="store_true", help="check files already on disk, download nothing")
    parser.add_argument("--keep-archives", action="store_true", help="keep the archives after extraction")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 1 when a download or check failed, 2 for a usage error."""
    if args.list:
        print(listing(args.root))
        return 0
    if not args.name:
        print("Give a dataset name, or --list to see them all.", file=sys.stderr)
        return 2
    if args.name not in SPECS:
        print(f"Unknown dataset {args.name!r}. Known: {', '.join(SPECS)}. (--list describes them.)", file=sys.stderr)
        return 2
    spec = SPECS[args.name]
    if spec.kind == "builtin":
        print(f"{spec.name}: {spec.download_command}.")
        return 0
    if args.verify_only or spec.kind == "shared" or (
        spec.kind == "manual" and _dataset_folder(spec, args.root).is_dir()
    ):
        return 0 if verify_only(spec, args.root) else 1
    try:
        prepare(spec, args.root, keep_archives=args.keep_archives, progress=not args.quiet)
    except (DownloadError, ChecksumError, ExtractionError, CountMismatchError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``data_scripts/download.py``."""
    parser = argparse.ArgumentParser(
        prog="python data_scripts/download.py",
        description="Download, verify and extract one of the paper's benchmarks.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
