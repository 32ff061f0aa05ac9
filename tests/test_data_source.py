"""The one rule for where data comes from: shared copy, then downloaded copy, then embedded demo set, in one line.

Every test builds its own shared folder and data folder under ``tmp_path`` (``COURSE_SHARED_DATA`` /
``COURSE_DATA_DIR``), so the answers do not depend on what this machine holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import datasets
from course_utils.datasets import DatasetMissingError, DatasetRecord, specs

GET_FLOWERS = "python data_scripts/download.py flowers17"


@pytest.fixture
def places(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """``(shared, data)``: an empty shared data folder and an empty data folder, both in use."""
    shared, data = tmp_path / "shared", tmp_path / "data"
    shared.mkdir()
    data.mkdir()
    monkeypatch.setenv("COURSE_SHARED_DATA", str(shared))
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    return shared, data


def shared_flowers17(shared: Path) -> Path:
    """A 17-image shared-layout copy (one image per class; the last one is the test split)."""
    root = shared / "oxford_flowers17"
    (root / "jpg").mkdir(parents=True)
    (root / "splits").mkdir()
    names = [f"jpg/image_{k:04d}.jpg" for k in range(1, 18)]
    for name in names:
        Image.new("RGB", (8, 8)).save(root / name)
    (root / "labels.csv").write_text("path,label,class_name\n" + "".join(f"{n},{k},c{k}\n"
                                                                         for k, n in enumerate(names, start=1)))
    (root / "splits" / "train.txt").write_text("\n".join(names[:-1]) + "\n")
    (root / "splits" / "test.txt").write_text(names[-1] + "\n")
    return root


def downloaded_flowers17(data: Path, finished: bool = True) -> Path:
    """The layout of 17flowers.tgz (1,360 empty jpg files) with the markers of a finished download."""
    root = data / "flowers17"
    (root / "jpg").mkdir(parents=True)
    for k in range(1, 1361):
        (root / "jpg" / f"image_{k:04d}.jpg").touch()
    if finished:
        for artifact in specs.get("flowers17").artifacts:
            specs.marker(root, artifact).parent.mkdir(exist_ok=True)
            specs.marker(root, artifact).write_text("{}\n")
    return root


def test_shared_copy_first_then_the_download_then_the_embedded_set(places, monkeypatch, capsys):
    shared, data = places
    copy, download = shared_flowers17(shared), downloaded_flowers17(data)
    record = datasets.load_preferred("flowers17", "demo_classes")
    assert capsys.readouterr().out == f"Data: flowers17 — shared copy, {copy} (17 images)\n"
    assert record.source == "shared" and record.root == copy and len(record) == 17

    (shared / "empty").mkdir()
    monkeypatch.setenv("COURSE_SHARED_DATA", str(shared / "empty"))  # an empty folder: no shared copies
    record = datasets.load_preferred("flowers17", "demo_classes")
    assert capsys.readouterr().out == f"Data: flowers17 — downloaded copy, {download} (1,360 images)\n"
    assert record.source == "downloaded" and record.root == download and (record.split == "test").sum() == 272

    specs.marker(download, specs.get("flowers17").artifacts[0]).unlink()  # an unfinished download does not count
    record = datasets.load_preferred("flowers17", "demo_classes")
    assert capsys.readouterr().out == ("Data: demo_classes — embedded demo set (flowers17 is not on this machine; "
                                       f"to get it: {GET_FLOWERS})\n")
    assert record.source == "embedded" and record.name == "demo_classes"


def test_a_copy_that_is_present_but_damaged_raises_instead_of_falling_back(places):
    shared, _ = places
    (shared_flowers17(shared) / "splits" / "test.txt").unlink()
    with pytest.raises(DatasetMissingError, match=r"Missing: splits/test\.txt\..*COURSE_SHARED_DATA"):
        datasets.load_preferred("flowers17", "demo_classes")


def test_keyword_arguments_go_to_the_real_set_only(places, capsys):
    record = datasets.load_preferred("dtd10", "demo_classes", seed=3)  # demo_classes takes no seed
    assert record.source == "embedded" and "dtd10 is not on this machine" in capsys.readouterr().out


def test_first_available_follows_the_rule_and_names_every_set_it_missed(places, capsys):
    _, data = places
    record = datasets.load_first_available(["flowers102", "flowers17", "demo_classes"])
    assert record.source == "embedded"
    assert capsys.readouterr().out == (
        "Data: demo_classes — embedded demo set (flowers102 and flowers17 are not on this machine; to get them: "
        f"python data_scripts/download.py flowers102, {GET_FLOWERS})\n")
    download = downloaded_flowers17(data)
    record = datasets.load_first_available(["flowers102", "flowers17", "demo_classes"])
    assert record.source == "downloaded" and record.name == "flowers17"
    assert capsys.readouterr().out == (
        f"Data: flowers17 — downloaded copy, {download} (1,360 images; flowers102 is not on this machine; to get "
        "it: python data_scripts/download.py flowers102)\n")
    with pytest.raises(DatasetMissingError, match=r"Dataset 'dtd10' was not found .*download\.py dtd10"):
        datasets.load_first_available(["flowers102", "dtd10"])
    with pytest.raises(ValueError, match="needs at least one dataset name"):
        datasets.load_first_available([])


def test_load_if_present_announces_a_skip(places, capsys):
    assert datasets.load_if_present("ukbench2000") is None
    assert capsys.readouterr().out == ("Data: ukbench2000 — skipped (ukbench2000 is not on this machine; to get it: "
                                       "python data_scripts/download.py ukbench2000)\n")


def test_the_announcement_shortens_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    record = DatasetRecord("flowers17", "multiclass", tmp_path / ".cache" / "flowers17", ["a.jpg", "b.jpg"],
                           source="downloaded")
    assert datasets.describe(record) == "Data: flowers17 — downloaded copy, ~/.cache/flowers17 (2 images)"


def test_record_source_is_checked_and_kept_by_subsets():
    record = DatasetRecord("toy", "multiclass", Path("/r"), ["a.jpg", "b.jpg"], labels=np.array([0, 1]),
                           source="shared")
    assert record.subset([1]).source == "shared" and DatasetRecord("toy", "multiclass", Path("/r"), []).source == ""
    with pytest.raises(ValueError, match=r"source 'cloud' is not one of \('shared', 'downloaded', 'embedded', ''\)"):
        DatasetRecord("toy", "multiclass", Path("/r"), [], source="cloud")


def test_locate_ignores_empty_shared_folders_and_unfinished_downloads(places):
    shared, data = places
    (shared / "oxford_flowers17").mkdir()
    downloaded_flowers17(data, finished=False)
    assert specs.locate("flowers17") is None
    assert specs.locate("demo_classes") is None  # embedded sets are not "located": load_preferred builds them
    copy = shared_flowers17(shared / "other")
    (shared / "oxford_flowers17").rmdir()
    copy.rename(shared / "oxford_flowers17")
    assert specs.locate("flowers17") == specs.Location("shared", shared / "oxford_flowers17")
