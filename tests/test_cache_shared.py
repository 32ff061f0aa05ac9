"""A cache a class shares: location-free keys, files other accounts can read, a read-only shared cache, demo sets.

The teacher warms a cache; it is copied to another path and made read-only; a student whose course, data and own
cache sit elsewhere points ``COURSE_SHARED_CACHE`` at it and gets hits, and nothing is written into it.
Tests run as root, for whom ``chmod a-w`` stops no write, so every test also compares a listing of the shared copy
(names, sizes, modification times, modes) before and after.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_demo_data import TinySet
from test_features import CountingEngines, run, tiny_backbone, write_photos

from course_utils import config, feature_store
from course_utils.datasets import demo
from course_utils.features import CacheEntryDamagedWarning


def listing(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root`` with its size, modification time and mode."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        out[path.relative_to(root).as_posix()] = (info.st_size if path.is_file() else None, info.st_mtime_ns,
                                                  stat.S_IMODE(info.st_mode))
    return out


def read_only_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    subprocess.run(["chmod", "-R", "a-w", str(target)], check=True)
    return target


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def teacher(tmp_path, monkeypatch):
    """A cache warmed by the course cache (``cache=True``) from the teacher's copy of the images."""
    monkeypatch.delenv("COURSE_SHARED_CACHE", raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "teacher-cache"))
    paths = write_photos(tmp_path / "teacher" / "course" / "img", 5)
    warmed = run(paths, True, views="mirror")
    assert not warmed.from_cache
    return paths, warmed


def as_student(tmp_path: Path, monkeypatch, teacher_paths: list[Path], shared: Path) -> list[Path]:
    """Point the environment at the student's own empty cache and the shared copy; the student's images are a copy of
    the teacher's in another folder."""
    own = tmp_path / "student-cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(own))
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(shared))
    folder = tmp_path / "student" / "elsewhere"
    folder.mkdir(parents=True)
    return [Path(shutil.copy2(path, folder / path.name)) for path in teacher_paths]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077], ids=["022", "002", "077"])
def test_cache_files_get_the_umask_permissions_never_0600(tmp_path, monkeypatch, umask):
    monkeypatch.setattr(feature_store, "DIGEST_SETTLE_SECONDS", 0.0)  # so that the digest memo is written too
    previous = os.umask(umask)
    try:
        paths = write_photos(tmp_path / "img", 3)
        result = run(paths, tmp_path / "cache", views="mirror")
        run(paths, tmp_path / "cache", views="mirror")  # a hit: writes the layer file's checksum to the memo
    finally:
        os.umask(previous)
    modes = {name: mode for name, (_, _, mode) in listing(tmp_path / "cache").items()}
    entry = result.cache_path.relative_to(tmp_path / "cache").as_posix()
    files = {f"{entry}/{name}" for name in ("key.json", "complete.json", "fc.npy", ".lock")}
    assert files <= set(modes) and any(name.startswith("digests/") and name.endswith(".json") for name in modes)
    for name, mode in modes.items():
        is_dir = (tmp_path / "cache" / name).is_dir()
        assert mode == (0o777 if is_dir else 0o666) & ~umask, (name, oct(mode))


def test_a_read_only_shared_cache_gives_hits_and_is_never_written(tmp_path, monkeypatch, teacher):
    paths, warmed = teacher
    shared = read_only_copy(tmp_path / "teacher-cache", tmp_path / "srv" / "course-cache")
    before = listing(shared)
    student_paths = as_student(tmp_path, monkeypatch, paths, shared)

    counter = CountingEngines(monkeypatch)
    locks: list[Path] = []
    real_exclusive = feature_store._exclusive
    monkeypatch.setattr(feature_store, "_exclusive", lambda entry: locks.append(entry) or real_exclusive(entry))
    hit = run(student_paths, True, views="mirror")
    assert hit.from_cache and counter.rows == 0 and locks == []  # read without a lock
    assert hit.cache_path.is_relative_to(shared)
    assert [str(p) for p in hit.paths] == [str(p) for p in student_paths]
    np.testing.assert_array_equal(hit["fc"], warmed["fc"])

    miss = run(student_paths, True, views="whole")  # not in the shared cache: computed into the student's own
    assert not miss.from_cache and counter.rows == 5
    assert miss.cache_path.is_relative_to(tmp_path / "student-cache")
    again = run(student_paths, True, views="whole")
    assert again.from_cache and again.cache_path == miss.cache_path and counter.rows == 5
    assert listing(shared) == before
    assert not (tmp_path / "student-cache" / "features" / hit.cache_path.name).exists()


def test_a_damaged_shared_entry_is_computed_into_the_own_cache(tmp_path, monkeypatch, teacher):
    paths, warmed = teacher
    shared_entry = tmp_path / "srv" / warmed.cache_path.relative_to(tmp_path / "teacher-cache")
    shutil.copytree(tmp_path / "teacher-cache", tmp_path / "srv")
    data = bytearray((shared_entry / "fc.npy").read_bytes())
    data[-1] ^= 0x40
    (shared_entry / "fc.npy").write_bytes(bytes(data))
    subprocess.run(["chmod", "-R", "a-w", str(tmp_path / "srv")], check=True)
    before = listing(tmp_path / "srv")
    student_paths = as_student(tmp_path, monkeypatch, paths, tmp_path / "srv")

    counter = CountingEngines(monkeypatch)
    own = tmp_path / "student-cache"
    expected = rf"{re.escape(str(shared_entry))} is damaged \(fc\.npy fails its checksum.*; it is computed into "
    with pytest.warns(CacheEntryDamagedWarning, match=expected + re.escape(f"{own}.")):
        result = run(student_paths, True, views="mirror")
    assert counter.rows == 10 and not result.from_cache and result.cache_path.is_relative_to(own)
    np.testing.assert_allclose(result["fc"], warmed["fc"], atol=1e-6)
    assert listing(tmp_path / "srv") == before


def test_shared_cache_dir_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "own"))
    monkeypatch.delenv("COURSE_SHARED_CACHE", raising=False)
    assert config.shared_cache_dir() is None
    (tmp_path / "srv").mkdir()
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(tmp_path / "srv"))
    assert config.shared_cache_dir() == tmp_path / "srv"
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(tmp_path / "own"))
    assert config.shared_cache_dir() is None  # the teacher's own session: that cache is the writable one
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(tmp_path / "typo"))
    with pytest.warns(UserWarning, match=rf"COURSE_SHARED_CACHE={tmp_path / 'typo'} is not a folder: it is ignored"):
        assert config.shared_cache_dir() is None
    assert not (tmp_path / "typo").exists()


def test_an_explicit_cache_folder_does_not_consult_the_shared_cache(tmp_path, monkeypatch, teacher):
    paths, _ = teacher
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(tmp_path / "teacher-cache"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "student-cache"))
    counter = CountingEngines(monkeypatch)
    result = run(paths, tmp_path / "explicit", views="mirror")
    assert not result.from_cache and counter.rows == 10 and result.cache_path.is_relative_to(tmp_path / "explicit")


def test_demo_sets_are_built_readable_by_others(tmp_path, monkeypatch, umask_022):
    monkeypatch.delenv("COURSE_SHARED_CACHE", raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    root, _ = demo._ensure_built("tiny", TinySet())
    modes = {name: mode for name, (_, _, mode) in listing(root).items()}
    assert modes == {"images": 0o755, "images/0.png": 0o644, "images/1.png": 0o644, "images/2.png": 0o644,
                     "manifest.csv": 0o644}
    assert stat.S_IMODE(root.stat().st_mode) == 0o755


def test_demo_sets_come_from_the_shared_cache_or_are_built_into_the_own(tmp_path, monkeypatch):
    teacher_builder = TinySet()
    monkeypatch.delenv("COURSE_SHARED_CACHE", raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "teacher-cache"))
    teacher_root, teacher_rows = demo._ensure_built("tiny", teacher_builder)
    teacher_paths = [teacher_root / row["path"] for row in teacher_rows]
    warmed = run(teacher_paths, True)
    shared = read_only_copy(tmp_path / "teacher-cache", tmp_path / "srv")
    before = listing(shared)

    # A student with the shared cache reads the set in place and gets the teacher's features.
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(shared))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "student-cache"))
    student_builder = TinySet()
    root, rows = demo._ensure_built("tiny", student_builder)
    assert student_builder.builds == 0 and root == shared / "demo" / "tiny"
    counter = CountingEngines(monkeypatch)
    hit = run([root / row["path"] for row in rows], True)
    assert hit.from_cache and counter.rows == 0
    np.testing.assert_array_equal(hit["fc"], warmed["fc"])

    # A student whose shared cache lacks the set builds it into their own cache: same bytes, so the same features.
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(tmp_path / "empty-srv"))
    (tmp_path / "empty-srv").mkdir()
    root, rows = demo._ensure_built("tiny", student_builder)
    assert student_builder.builds == 1 and root == tmp_path / "student-cache" / "demo" / "tiny"
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(shared))
    hit = run([root / row["path"] for row in rows], True)  # the student's own copy: a hit in the shared cache
    assert hit.from_cache and counter.rows == 0 and hit.cache_path.is_relative_to(shared)
    assert listing(shared) == before


def test_keys_hold_no_path_and_entries_move_with_the_cache(tmp_path, monkeypatch):
    """The whole cache moved to another path (and the images to another folder) still gives hits."""
    paths = write_photos(tmp_path / "a" / "img", 3)
    first = run(paths, tmp_path / "a" / "cache", backbone=tiny_backbone(), layers=["conv", "fc"])
    key = (first.cache_path / "key.json").read_text()
    assert str(tmp_path) not in key and "img0000" not in key
    shutil.move(tmp_path / "a", tmp_path / "b")
    counter = CountingEngines(monkeypatch)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        moved = run([tmp_path / "b" / "img" / p.name for p in paths], tmp_path / "b" / "cache", layers=["conv", "fc"])
    assert moved.from_cache and counter.rows == 0
    assert not [w for w in seen if issubclass(w.category, CacheEntryDamagedWarning)]
