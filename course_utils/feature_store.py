"""The feature store: where :func:`course_utils.features.extract` keeps its features, and how an entry is read,
written and finished. Every runner of an extraction (one process, :mod:`course_utils.features`; a Ray Data job,
:mod:`course_utils.scale.ray_extract`) goes through this module, so that they write the same entries and each reads
what the other wrote.

An entry is the folder ``<cache root>/features/<sha256 of the key>/``, the key being a canonical JSON of everything
that changes the numbers (made by :func:`course_utils.features.plan`; this module only stores by it). It holds
``key.json`` (the key, readable), ``<layer>.npy`` per layer (``(n_images, n_views, dim)`` float32, written through a
memory map), ``progress.json`` while rows are being written and ``complete.json`` once done. The rules every runner
keeps, by using :func:`fetch` and :class:`EntryWriter` rather than touching the files:

* **One writer.** An entry of our own cache is computed under an advisory lock: a second process asking for the same
  features waits, then reads them. A class's shared cache (``$COURSE_SHARED_CACHE``) is only read: no lock, nothing
  written there; a miss is computed into the learner's own cache.
* **Resumable.** Arrays are flushed to disk *before* ``progress.json`` records the rows they hold, atomically; a
  killed run resumes from the last record.
* **Only a verified, finished entry is read back.** ``complete.json`` is written last, with each layer file's CRC-32,
  and withdrawn before anything it vouches for is rewritten. A finished entry that fails its checks is reported in
  one :class:`CacheEntryDamagedWarning` line and computed again. A layer file that passed its check is remembered
  like an image digest (:class:`DigestMemo`), so reading a large entry again costs no pass over its bytes.
* **A full disk is an error, not a crash.** Each layer file is allocated whole before the first row is written, so a
  full disk raises an ``OSError`` saying how many bytes are needed and where, not a ``SIGBUS``.
* Every file gets the permissions of the process's umask (never ``0600``): a cache warmed by one account is readable
  by others.

``<cache root>/digests/`` holds the remembered file digests (this machine's paths: never read from a shared cache).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import config
from .datasets.images import file_digest, write_text_atomic
from .imageio import BadImageError

CACHE_VERSION = 2  # bump whenever the key's content or an entry's layout changes (2: images by content, CRC-32s)
_FEATURES_DIR = "features"
_DIGESTS_DIR = "digests"
DIGEST_SETTLE_SECONDS = 2.0  # a file changed this recently is not remembered: its timestamps may not show a change yet
_ZERO_CHUNK = 1 << 18  # bytes per write when zero-filling a layer file where posix_fallocate is missing


@dataclass
class FeatureSet:
    """Features of a list of images: ``arrays[layer]`` is read-only, shaped ``(n_images, n_views, dim)``, float32.

    Row ``i`` always belongs to ``paths[i]``; an image skipped with ``on_error="skip"`` keeps its row, filled with
    NaN, and ``valid[i]`` is False. ``cache_path`` is the cache entry folder (``None`` with ``cache=False``).
    """

    arrays: dict[str, np.ndarray]
    paths: list[Path]
    view_names: list[str]
    valid: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    backbone: str = ""
    weights_id: str = ""
    views: str = ""
    cache_path: Path | None = None
    from_cache: bool = False

    @property
    def layers(self) -> list[str]:
        """The extracted layers, in the order asked for."""
        return list(self.arrays)

    @property
    def n_views(self) -> int:
        """Views per image."""
        return len(self.view_names)

    @property
    def layer(self) -> str:
        """The one layer of a single-layer set (what :func:`course_utils.experiments.dataset_features` returns)."""
        if len(self.arrays) != 1:
            raise ValueError(f"This FeatureSet holds {len(self.arrays)} layers ({self.layers}); pick one with "
                             "feature_set[layer].")
        return next(iter(self.arrays))

    @property
    def X(self) -> np.ndarray:  # the course's name for a feature matrix, as in scikit-learn
        """The one layer's features, ``(n_images, n_views, dim)``: ``self[self.layer]``."""
        return self[self.layer]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, layer: str) -> np.ndarray:
        try:
            return self.arrays[layer]
        except KeyError:
            raise KeyError(f"No layer {layer!r} in this FeatureSet; it holds {self.layers}.") from None


class CacheEntryDamagedWarning(UserWarning):
    """A finished feature-cache entry failed its checks when read back; its features are computed again."""


def content_digests(paths: list[Path], on_error: str, memo: DigestMemo | None) -> list[str | None]:
    """Each file's SHA-256 for the cache key (``None`` for a file that cannot be read, only allowed when skipping);
    with no cache (``memo`` is ``None``) only that every file exists is checked, and no digest is computed."""
    digests: list[str | None] = []
    for path in paths:
        try:
            if memo is None:
                path.stat()  # no key to make: only check that the file is there
                digests.append(None)
            else:
                digests.append(memo.digest(path, "sha256"))
        except OSError as err:
            if on_error == "raise":
                reason = ("the file does not exist (check the path and the dataset folder)"
                          if isinstance(err, FileNotFoundError) else f"it cannot be read ({err.strerror or err})")
                raise BadImageError(path, reason) from None
            digests.append(None)
    if memo is not None:
        memo.save()
    return digests


def cache_root(cache: bool | str | os.PathLike) -> Path | None:
    """The cache root meant by ``extract``'s ``cache`` argument: the course cache (``True``), that folder, or
    ``None`` (``False``: nothing stored)."""
    if cache is False:
        return None
    return config.cache_dir() if cache is True else Path(cache).expanduser()


def layer_file(entry: Path, layer: str) -> Path:
    """The ``.npy`` file of ``layer`` in ``entry`` (characters a file name should not hold become ``_``)."""
    return entry / (re.sub(r"[^A-Za-z0-9_.@+-]", "_", layer) + ".npy")


@contextlib.contextmanager
def _exclusive(entry: Path) -> Iterator[None]:
    """Hold an advisory lock on a cache entry (POSIX); elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:  # Windows: two notebooks extracting the same features at once would both compute them
        yield
        return
    with open(entry / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: Path, content: dict) -> None:
    """Write ``content`` as JSON to ``path`` atomically (temp + rename), with umask permissions: a class can share
    the cache."""
    write_text_atomic(path, json.dumps(content, indent=1))


class DigestMemo:
    """File digests remembered in ``<cache root>/digests/`` (one JSON per folder of files), each against the file's
    size, modification and change times and inode: a file that still has all four has the same bytes. Any write
    changes the change time, which no program can set back, so a changed file is always hashed again. A file changed
    less than :data:`DIGEST_SETTLE_SECONDS` before it was hashed is not remembered (its next change could fall in the
    same tick of a coarse file-system clock). Losing the memo only costs time; writing it never fails a run."""

    def __init__(self, root: Path) -> None:
        self.folder = root / _DIGESTS_DIR
        self.tables: dict[str, dict[str, dict]] = {}  # by folder (a string: hashing Path objects costs more here)
        self.changed: set[str] = set()

    def digest(self, path: Path, algorithm: str) -> str:
        """The file's digest, from the memo when the file is unchanged; raises ``OSError`` when it cannot be read."""
        folder, name = os.path.split(os.fspath(path))
        signature = _signature(os.stat(path))
        table = self._table(folder)
        remembered = table.get(name)
        if remembered is not None and remembered.get("signature") == signature and algorithm in remembered:
            return remembered[algorithm]
        value = file_digest(path, algorithm)
        settled = time.time_ns() - max(signature[1], signature[2]) >= DIGEST_SETTLE_SECONDS * 1e9
        if settled and _signature(os.stat(path)) == signature:  # and it did not change while being read
            if remembered is None or remembered.get("signature") != signature:
                remembered = table[name] = {"signature": signature}
            remembered[algorithm] = value
            self.changed.add(folder)
        return value

    def save(self) -> None:
        """Write the tables that gained digests (best effort: a read-only or full disk only loses the memo)."""
        for folder in self.changed:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                write_json(self._file(folder), {"folder": folder, "files": self.tables[folder]})
            except OSError:
                pass
        self.changed.clear()

    def _file(self, folder: str) -> Path:
        return self.folder / f"{hashlib.sha256(os.fsencode(folder)).hexdigest()[:32]}.json"

    def _table(self, folder: str) -> dict[str, dict]:
        if folder not in self.tables:
            try:
                record = json.loads(self._file(folder).read_text())
                table = record["files"] if record.get("folder") == folder else {}
            except (OSError, ValueError, KeyError, TypeError):
                table = {}
            self.tables[folder] = table if isinstance(table, dict) else {}
        return self.tables[folder]


def _signature(info: os.stat_result) -> list[int]:
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _size_text(n_bytes: int, exact: bool = True) -> str:
    """``"320 bytes"``, ``"12.5 MiB (13,107,200 bytes)"`` (``exact``) or ``"12.5 MiB"``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}" + (f" ({n_bytes:,} bytes)" if exact else "")
    return f"{n_bytes} bytes"


def create_array(path: Path, shape: tuple[int, ...], entry_bytes: int) -> np.memmap:
    """A new ``.npy`` file of zeros, allocated on disk before any row is written through its memory map."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    try:
        _reserve_space(path, entry_bytes, zero_from=array.offset)
    except BaseException:
        del array
        path.unlink(missing_ok=True)
        raise
    return array


def _reserve_space(path: Path, entry_bytes: int, zero_from: int | None) -> None:
    """Allocate every block of ``path`` now (``os.posix_fallocate``), so that a full disk is an ``OSError`` naming the
    space needed and where, not a ``SIGBUS`` when a row is later written through the memory map. Where that call is
    missing or unsupported, a new file is allocated by writing its zeros from byte ``zero_from`` on (``None``: a
    resumed file, whose rows must be kept, is left as it is)."""
    size = path.stat().st_size
    try:
        with open(path, "r+b") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, size)
            except (AttributeError, OSError) as err:  # AttributeError: no posix_fallocate (macOS, Windows)
                if isinstance(err, OSError) and err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                if zero_from is not None:
                    handle.seek(zero_from)
                    zeros = bytes(_ZERO_CHUNK)
                    for start in range(zero_from, size, len(zeros)):
                        handle.write(zeros[: min(len(zeros), size - start)])
                    handle.flush()
                    os.fsync(handle.fileno())
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free = shutil.disk_usage(path.parent).free
        raise OSError(
            err.errno,
            f"Not enough disk space for the features: {path.name} needs {_size_text(size)} and the whole entry "
            f"{_size_text(entry_bytes)} in {path.parent}, where {_size_text(free, exact=False)} are free. Free "
            f"some space there (or set COURSE_CACHE_DIR to a larger disk) and run again: the rows already finished "
            f"are kept.",
        ) from err


def read_entry(entry: Path, template: Callable[[], FeatureSet], shapes: Mapping[str, tuple[int, ...]],
               memo: DigestMemo, then: str) -> FeatureSet | None:
    """The finished, verified entry filled into ``template()``, or ``None``: not finished (no warning), or damaged (one
    warning line naming the entry and what was wrong; ``then`` says what happens next). Reads only: nothing is
    written into ``entry``, so it serves a read-only shared cache too."""
    if not (entry / "complete.json").is_file():
        return None
    loaded = load_entry(entry, template(), shapes, memo)
    memo.save()
    if isinstance(loaded, str):
        warnings.warn(f"Feature cache entry {entry} is damaged ({loaded}); {then}.", CacheEntryDamagedWarning,
                      stacklevel=4)
        return None
    return loaded


def load_entry(entry: Path, template: FeatureSet, shapes: Mapping[str, tuple[int, ...]], memo: DigestMemo,
                verify: bool = True) -> FeatureSet | str:
    """The finished entry as a FeatureSet of read-only memory maps, or what is wrong with it: a missing, empty,
    truncated layer file, another shape or dtype than the job's, or (``verify``) a CRC-32 other than recorded."""
    try:
        record = json.loads((entry / "complete.json").read_text())
        checksums, skipped = record["crc32"], [(int(item["index"]), item["reason"]) for item in record["skipped"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"complete.json cannot be read ({err})"
    if any(not 0 <= i < len(template.paths) for i, _ in skipped):
        return "complete.json lists skipped images that the job does not have"
    arrays = {}
    for layer, shape in shapes.items():
        path = layer_file(entry, layer)
        try:
            if path.stat().st_size == 0:
                return f"{path.name} is empty"
            array = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            return f"{path.name} is missing"
        except (OSError, ValueError, EOFError) as err:
            return f"{path.name} cannot be read: {err}"
        if array.shape != shape or array.dtype != np.float32 or not array.flags.c_contiguous:
            return f"{path.name} holds {array.dtype} {array.shape}, not float32 {shape}"
        if verify:
            try:
                crc = memo.digest(path, "crc32")
            except OSError as err:
                return f"{path.name} cannot be read: {err}"
            if crc != checksums.get(layer):
                return f"{path.name} fails its checksum: CRC-32 {crc}, recorded {checksums.get(layer)}"
        arrays[layer] = array
    template.arrays, template.cache_path, template.from_cache = arrays, entry, True
    template.skipped = [(str(template.paths[i]), reason) for i, reason in skipped]
    template.valid[[i for i, _ in skipped]] = False
    return template


def _skipped_list(paths: list[Path], skipped: dict[int, str]) -> list[dict]:
    return [{"index": i, "path": str(paths[i]), "reason": skipped[i]} for i in sorted(skipped)]


def clear_cache(cache_root: str | os.PathLike | None = None) -> int:
    """Delete every stored feature entry under ``cache_root`` (default: the course cache); returns how many."""
    root = (Path(cache_root) if cache_root else config.cache_dir()) / _FEATURES_DIR
    entries = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    for entry in entries:
        shutil.rmtree(entry)
    return len(entries)


# --------------------------------------------------------------------------------------------------- an entry's life


def entry_folder(root: Path, key: str) -> Path:
    """The folder of the entry stored under ``key`` in the cache ``root`` (named by the key's SHA-256)."""
    return root / _FEATURES_DIR / hashlib.sha256(key.encode()).hexdigest()


def fetch(
    root: Path,
    key: str,
    template: Callable[[], FeatureSet],
    shapes: Mapping[str, tuple[int, int, int]],
    memo: DigestMemo,
    compute: Callable[[EntryWriter], FeatureSet],
    *,
    use_shared: bool = True,
) -> FeatureSet:
    """The features stored under ``key``: from the class's shared cache (``use_shared`` and ``$COURSE_SHARED_CACHE``
    set; read-only), else from our own entry under ``root``, else ``compute(writer)`` fills that entry (opened with
    :meth:`EntryWriter.open`) and returns :meth:`EntryWriter.finish`'s result. The own entry is looked at and
    computed under its lock, so one process computes it and any other asking meanwhile waits, then reads it.

    ``template()`` makes the empty :class:`FeatureSet` an entry is read into; ``shapes`` gives each layer's
    ``(n_images, n_views, dim)``, checked against the files.
    """
    shared = config.shared_cache_dir() if use_shared else None
    if shared is not None:  # read-only: no lock, nothing written there; a miss is computed into our own cache
        found = read_entry(entry_folder(shared, key), template, shapes, memo, f"it is computed into {root}")
        if found is not None:
            return found
    entry = entry_folder(root, key)
    entry.mkdir(parents=True, exist_ok=True)
    with _exclusive(entry):  # a second process asking for the same features waits, then reads them
        found = read_entry(entry, template, shapes, memo, "it is computed again")
        if found is not None:
            return found
        return compute(EntryWriter.open(entry, key, template, shapes, memo))


@dataclass
class EntryWriter:
    """An entry opened for writing, under its lock (:func:`fetch` opens it): its layer arrays (writable memory maps,
    allocated on disk), the rows already finished and the images skipped in them, resumed from ``progress.json``.

    A runner writes rows into :attr:`arrays` in any order, calls :meth:`checkpoint` now and then (and on any
    interruption) and :meth:`finish` once every row is written.
    """

    folder: Path
    template: Callable[[], FeatureSet]
    shapes: Mapping[str, tuple[int, int, int]]
    memo: DigestMemo
    arrays: dict[str, np.memmap]
    done: int  # rows 0..done-1 are finished
    skipped: dict[int, str] = field(default_factory=dict)  # image index -> why it was skipped (rows finished)
    resumed: dict | None = None  # the progress.json resumed from (a runner may have recorded more in it), or None

    @classmethod
    def open(cls, entry: Path, key: str, template: Callable[[], FeatureSet],
             shapes: Mapping[str, tuple[int, int, int]], memo: DigestMemo) -> EntryWriter:
        """Open ``entry`` (whose lock the caller holds) for writing. A finished entry (one that failed its checks)
        first loses its ``complete.json`` and its progress: its rows are the damaged ones. Then the arrays are
        resumed from ``progress.json`` when that record and the files agree with ``shapes``, else created new,
        with ``key.json`` and a ``progress.json`` of no rows written."""
        marker, progress_file = entry / "complete.json", entry / "progress.json"
        if marker.exists():  # withdraw the marker before touching anything it vouches for
            marker.unlink()
            progress_file.unlink(missing_ok=True)
        entry_bytes = sum(4 * math.prod(shape) for shape in shapes.values())
        if progress_file.is_file():
            try:
                record = json.loads(progress_file.read_text())
                arrays = {layer: np.load(layer_file(entry, layer), mmap_mode="r+") for layer in shapes}
                if all(arrays[layer].shape == shape and arrays[layer].dtype == np.float32
                       for layer, shape in shapes.items()):
                    skipped = {int(item["index"]): item["reason"] for item in record["skipped"]}
                    for layer in shapes:
                        _reserve_space(layer_file(entry, layer), entry_bytes, zero_from=None)
                    return cls(entry, template, shapes, memo, arrays, int(record["done"]), skipped, record)
            except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
                if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                    raise  # the disk is full: keep the finished rows for when space is freed
            progress_file.unlink(missing_ok=True)  # a damaged entry: start it again below
        arrays = {layer: create_array(layer_file(entry, layer), shape, entry_bytes) for layer, shape in shapes.items()}
        writer = cls(entry, template, shapes, memo, arrays, 0)
        write_text_atomic(entry / "key.json", key)
        writer.checkpoint(0, {})
        return writer

    def checkpoint(self, done: int, skipped: Mapping[int, str], **more: object) -> None:
        """Flush the arrays, *then* record in ``progress.json`` (atomically) that rows ``0..done-1`` are finished,
        with the images ``skipped`` among the finished rows and what else the runner resumes from (``more``)."""
        for array in self.arrays.values():
            array.flush()  # rows on disk first, then the record that says they are there
        paths = self.template().paths
        write_json(self.folder / "progress.json", {"done": done, **more, "skipped": _skipped_list(paths, skipped)})

    def finish(self, skipped: Mapping[int, str], settings: Mapping[str, object]) -> FeatureSet:
        """Close the arrays and mark the entry finished: ``complete.json`` with each layer file's CRC-32, the
        ``skipped`` images and the run's ``settings`` (engine, batch size, ...: for whoever reads the entry later);
        then read it back as a :class:`FeatureSet` of read-only memory maps (``from_cache`` False)."""
        for array in self.arrays.values():
            array.flush()
        self.arrays.clear()  # close the writable maps; the result re-opens them read-only
        template = self.template()
        layers = list(self.shapes)
        checksums = {layer: file_digest(layer_file(self.folder, layer), "crc32") for layer in layers}
        write_json(self.folder / "complete.json", {
            "cache_version": CACHE_VERSION, "n_images": len(template.paths), "views": template.view_names,
            "layers": layers, "shapes": {layer: list(shape) for layer, shape in self.shapes.items()},
            "crc32": checksums, "skipped": _skipped_list(template.paths, skipped), **settings,
        })
        (self.folder / "progress.json").unlink(missing_ok=True)
        loaded = load_entry(self.folder, template, self.shapes, self.memo, verify=False)  # just checksummed
        if isinstance(loaded, str):
            raise RuntimeError(f"The feature cache entry {self.folder} was written but cannot be read back "
                               f"({loaded}); delete it.")
        loaded.from_cache = False
        return loaded
