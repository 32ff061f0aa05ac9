"""The feature cache never serves damaged features: interrupted recomputations, damaged layer files, a full disk.

Every test builds a finished cache entry with the tiny network of ``test_features``, damages it the way a user, a
crash or a disk would, and checks that the next :func:`course_utils.features.extract` says so in one warning naming
the entry, computes the features again and returns the original numbers.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_features import CountingEngines, run, tiny_backbone, write_photos

from course_utils import feature_store, features
from course_utils.datasets.images import file_digest
from course_utils.features import CacheEntryDamagedWarning


def finished_entry(tmp_path: Path, n_images: int = 6) -> tuple[list[Path], features.FeatureSet]:
    paths = write_photos(tmp_path / "img", n_images)
    original = run(paths, tmp_path / "cache", batch_size=2)
    assert (original.cache_path / "complete.json").is_file() and not original.from_cache
    return paths, original


def test_an_interrupted_recomputation_is_never_read_back(tmp_path, monkeypatch):
    """Issue 18.1: a finished entry loses its layer file, the recomputation is interrupted, the next run must not
    return the half-filled (zero) array under the old completion marker."""
    paths, original = finished_entry(tmp_path)
    expected = np.array(original["fc"])
    entry = original.cache_path
    (entry / "fc.npy").unlink()

    def ctrl_c_after_the_first_batch(done, total):
        assert not (entry / "complete.json").exists()  # withdrawn before the array was rewritten
        raise KeyboardInterrupt

    with pytest.warns(CacheEntryDamagedWarning, match=re.escape(f"{entry} is damaged (fc.npy is missing)")):
        with pytest.raises(KeyboardInterrupt):
            run(paths, tmp_path / "cache", batch_size=2, on_batch=ctrl_c_after_the_first_batch)
    assert not (entry / "complete.json").exists()
    assert json.loads((entry / "progress.json").read_text())["done"] == 2

    counter = CountingEngines(monkeypatch)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        resumed = run(paths, tmp_path / "cache", batch_size=2)
    assert not damage_warnings(seen)  # an unfinished entry is resumed quietly: it is not damaged
    assert counter.rows == 4 and not resumed.from_cache  # only the 4 images the interrupted run did not reach
    assert not (resumed["fc"] == 0).all(axis=(1, 2)).any()
    np.testing.assert_array_equal(resumed["fc"], expected)


def damage_warnings(seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, CacheEntryDamagedWarning)]


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x10
    path.write_bytes(bytes(data))


def _overwrite(path: Path, row: int, value: float) -> None:
    array = np.load(path, mmap_mode="r+")
    array[row] = value
    array.flush()
    del array


DAMAGES = {
    "a wider layer": (lambda p: np.save(p, np.zeros((6, 1, 7), np.float32)), r"fc\.npy holds float32 \(6, 1, 7\), "
                      r"not float32 \(6, 1, 6\)"),
    "another dtype": (lambda p: np.save(p, np.zeros((6, 1, 6), np.float64)), r"fc\.npy holds float64"),
    "a flipped bit": (_flip_a_bit, r"fc\.npy fails its checksum: CRC-32 [0-9a-f]{8}, recorded [0-9a-f]{8}"),
    "a zeroed row": (lambda p: _overwrite(p, 3, 0.0), r"fc\.npy fails its checksum"),
    "NaN": (lambda p: _overwrite(p, 1, np.nan), r"fc\.npy fails its checksum"),
    "inf": (lambda p: _overwrite(p, 5, np.inf), r"fc\.npy fails its checksum"),
    "a 0-byte file": (lambda p: p.write_bytes(b""), r"fc\.npy is empty"),
    "a truncated file": (lambda p: p.write_bytes(p.read_bytes()[:150]), r"fc\.npy cannot be read"),
    "a garbled marker": (lambda p: (p.parent / "complete.json").write_text("{\"crc"), r"complete\.json cannot be read"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_entry_is_reported_and_computed_again(tmp_path, monkeypatch, damage):
    paths, original = finished_entry(tmp_path)
    expected = np.array(original["fc"])
    entry = original.cache_path
    harm, message = DAMAGES[damage]
    harm(entry / "fc.npy")

    counter = CountingEngines(monkeypatch)
    with pytest.warns(CacheEntryDamagedWarning) as caught:
        again = run(paths, tmp_path / "cache", batch_size=2)
    (warning,) = caught
    text = str(warning.message)
    assert "\n" not in text and text.startswith(f"Feature cache entry {entry} is damaged (")
    assert re.search(message, text) and text.endswith("; it is computed again.")
    assert counter.rows == 6 and not again.from_cache and again.cache_path == entry
    np.testing.assert_array_equal(again["fc"], expected)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        hit = run(paths, tmp_path / "cache", batch_size=2)
    assert not damage_warnings(seen)
    assert hit.from_cache and counter.rows == 6
    np.testing.assert_array_equal(hit["fc"], expected)


def test_the_marker_records_a_crc32_per_layer_and_the_full_shapes(tmp_path):
    paths = write_photos(tmp_path / "img", 3)
    result = run(paths, tmp_path / "cache", layers=["conv", "fc"], views="mirror")
    record = json.loads((result.cache_path / "complete.json").read_text())
    assert record["shapes"] == {"conv": [3, 2, 8], "fc": [3, 2, 6]}
    for layer in ("conv", "fc"):
        data = (result.cache_path / f"{layer}.npy").read_bytes()
        assert record["crc32"][layer] == f"{zlib.crc32(data):08x}"


def test_a_verified_layer_file_is_not_read_again_until_it_changes(tmp_path, monkeypatch):
    """The CRC-32 of a settled file is remembered against its size, times and inode: a hit then costs no pass over
    its bytes, and any write to it makes the next hit check it again."""
    monkeypatch.setattr(feature_store, "DIGEST_SETTLE_SECONDS", 0.0)
    paths, original = finished_entry(tmp_path)
    hashed: list[str] = []
    real = feature_store.file_digest
    monkeypatch.setattr(feature_store, "file_digest", lambda path, algorithm: hashed.append(Path(path).name) or
                        real(path, algorithm))
    assert run(paths, tmp_path / "cache", batch_size=2).from_cache
    assert "fc.npy" in hashed  # written by the extraction, checked once on the first hit
    hashed.clear()
    assert run(paths, tmp_path / "cache", batch_size=2).from_cache
    assert hashed == []  # neither the images nor the layer file were read again
    layer_file = original.cache_path / "fc.npy"
    _overwrite(layer_file, 2, 0.0)
    stat = layer_file.stat()  # a write seconds later (the memo only trusts files settled for that long)
    os.utime(layer_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.warns(CacheEntryDamagedWarning, match="fails its checksum"):
        run(paths, tmp_path / "cache", batch_size=2)


def test_an_image_changed_under_the_memo_is_hashed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(feature_store, "DIGEST_SETTLE_SECONDS", 0.0)
    path = write_photos(tmp_path / "img", 1)[0]
    memo = feature_store.DigestMemo(tmp_path / "cache")
    first = memo.digest(path, "sha256")
    memo.save()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    stat = path.stat()
    time.sleep(0.1)  # past the file system clock's tick, so that the change time moves
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and modification time: the change time moves
    again = feature_store.DigestMemo(tmp_path / "cache").digest(path, "sha256")
    assert again != first and again == file_digest(path, "sha256")


def test_a_file_hashed_just_after_it_changed_is_not_remembered(tmp_path):
    path = write_photos(tmp_path / "img", 1)[0]  # written now: inside DIGEST_SETTLE_SECONDS
    memo = feature_store.DigestMemo(tmp_path / "cache")
    memo.digest(path, "sha256")
    memo.save()
    assert not (tmp_path / "cache" / "digests").exists()


def full_disk(fd: int, offset: int, length: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_an_oserror_naming_the_bytes_and_the_folder(tmp_path, monkeypatch):
    """Issue 18.3: the layer files are allocated before any row is written, so a full disk cannot SIGBUS."""
    paths = write_photos(tmp_path / "img", 6)
    monkeypatch.setattr(os, "posix_fallocate", full_disk)
    with pytest.raises(OSError) as raised:
        run(paths, tmp_path / "cache", layers=["conv", "fc"], batch_size=2)
    (entry,) = (tmp_path / "cache" / "features").iterdir()
    assert raised.value.errno == errno.ENOSPC
    message = str(raised.value)
    data_bytes = 6 * 8 * 4  # conv: 6 images x 1 view x 8 values of float32
    assert f"conv.npy needs {data_bytes + 128} bytes and the whole entry {6 * 14 * 4} bytes in {entry}, " in message
    assert re.search(r"where [0-9.]+ [GMK]iB are free", message), message
    assert "Free some space there (or set COURSE_CACHE_DIR to a larger disk)" in message
    assert not (entry / "complete.json").exists() and not list(entry.glob("*.npy"))

    monkeypatch.undo()  # space freed
    done = run(paths, tmp_path / "cache", layers=["conv", "fc"], batch_size=2)
    np.testing.assert_allclose(done["fc"], run(paths, False, batch_size=2)["fc"], atol=1e-6)


def test_a_full_disk_on_resume_keeps_the_finished_rows(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", 6)

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(paths, tmp_path / "cache", batch_size=2, on_batch=stop)
    (entry,) = (tmp_path / "cache" / "features").iterdir()
    layer_file = entry / "fc.npy"
    assert layer_file.stat().st_blocks * 512 >= layer_file.stat().st_size  # allocated, not a sparse file
    with monkeypatch.context() as patch:
        patch.setattr(os, "posix_fallocate", full_disk)
        with pytest.raises(OSError, match=r"fc\.npy needs 272 bytes"):
            run(paths, tmp_path / "cache", batch_size=2)
    assert json.loads((entry / "progress.json").read_text())["done"] == 2
    counter = CountingEngines(monkeypatch)
    resumed = run(paths, tmp_path / "cache", batch_size=2)
    assert counter.rows == 4
    np.testing.assert_allclose(resumed["fc"], run(paths, False, batch_size=2)["fc"], atol=1e-6)


def test_without_posix_fallocate_the_file_is_filled_with_zeros(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "posix_fallocate")  # as on macOS and Windows
    paths = write_photos(tmp_path / "img", 3)
    result = run(paths, tmp_path / "cache", backbone=tiny_backbone(), views="mirror")
    np.testing.assert_allclose(result["fc"], run(paths, False, views="mirror")["fc"], atol=1e-6)
    assert result["fc"].shape == (3, 2, 6)


def test_bench_cache_prints_its_figures_and_a_result_line(tmp_path, capsys):
    from course_utils import __main__ as cli

    write_photos(tmp_path / "img", 4)
    assert cli.main(["bench", "cache", "--quick", "--rounds", "1", "--image-dir", str(tmp_path / "img")]) == 0
    out = capsys.readouterr().out
    assert "entry 500 x 4 x 256 float32 = 2 MB" in out and f"content keys: 4 files of {tmp_path / 'img'}" in out
    assert out.count("load average before/after: ") == 2
    result = dict(item.split("=") for item in out.strip().splitlines()[-1].removeprefix("RESULT ").split())
    assert set(result) == {"crc_seconds", "crc_vs_hit_and_pass", "memo_vs_hit_and_pass", "sha256_seconds",
                           "memo_key_seconds", "stat_seconds"}
    assert all(float(value) >= 0 for value in result.values())


def test_file_digest_equals_hashlib_and_zlib_and_names_a_bad_algorithm(tmp_path):
    import hashlib
    import zlib

    data = bytes(range(256)) * 5000  # several read chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    assert file_digest(path, "crc32") == f"{zlib.crc32(data):08x}"
    with pytest.raises(ValueError, match="Unknown digest 'md5'; choose sha256 or crc32"):
        file_digest(path, "md5")
