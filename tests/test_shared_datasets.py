"""The course's real sets: their shared copies (skipped when absent), the split lists shipped with the course
(compared with the shared copies), the official layouts a download gives, and their errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import config, datasets
from course_utils.datasets import DatasetMissingError
from course_utils.datasets.shared import (
    DTD10_CLASSES,
    FLOWERS17_CLASSES,
    dtd10,
    dtd_split,
    flowers17,
    split_list,
    ukbench2000,
)


def shared_folder(name: str) -> Path:
    root = config.shared_data_dir()
    if root is None or not (root / name).is_dir():
        pytest.skip(f"no shared data folder with {name}/ on this machine (set COURSE_SHARED_DATA)")
    return root / name


@pytest.mark.shared
def test_flowers17_counts_labels_and_split():
    root = shared_folder("oxford_flowers17")
    rec = datasets.load("flowers17")
    assert rec.root == root and rec.task == "multiclass" and len(rec) == 1360 and len(rec.class_names) == 17
    assert rec.class_names[0] == "daffodil" and rec.class_names[-1] == "pansy"
    assert (rec.split == "train").sum() == 1088 and (rec.split == "test").sum() == 272
    for path, label in zip(rec.paths, rec.labels, strict=True):
        k = int(path.stem.split("_")[1])  # image_0001.jpg -> 1
        assert label == math.ceil(k / 80) - 1
    for label in range(17):  # the copy's split is 64 / 16 per class
        assert (rec.split[rec.labels == label] == "test").sum() == 16
    assert rec.paths[0].is_file() and rec.paths[-1].is_file()


@pytest.mark.shared
def test_dtd10_split_is_40_40_40_and_stable():
    shared_folder("dtd_subset10")
    rec, again = dtd10(), datasets.load("dtd10")
    assert len(rec) == 1200 and len(rec.class_names) == 10 and rec.class_names[0] == "banded"
    for label in range(10):
        mine = rec.split[rec.labels == label]
        assert [(mine == s).sum() for s in ("train", "val", "test")] == [40, 40, 40]
    assert rec.paths == again.paths and (rec.split == again.split).all()
    assert all(p.parent.name == rec.class_names[k] for p, k in zip(rec.paths, rec.labels, strict=True))
    other_seed = dtd10(seed=1)
    assert (other_seed.split != rec.split).any()


def test_dtd_split_depends_on_names_and_seed_not_on_row_order():
    labels = np.repeat([0, 1, 2], 6)
    paths = [f"c{k}/img_{i}.jpg" for k in range(3) for i in range(6)]
    split = dtd_split(labels, paths, seed=3)
    for label in range(3):
        assert sorted(split[labels == label]) == ["test", "test", "train", "train", "val", "val"]
    order = np.random.default_rng(0).permutation(len(paths))
    shuffled = dtd_split(labels[order], [paths[i] for i in order], seed=3)
    assert dict(zip([paths[i] for i in order], shuffled, strict=True)) == dict(zip(paths, split, strict=True))
    assert any((dtd_split(labels, paths, seed=s) != split).any() for s in range(4, 8))


def test_missing_everywhere_names_the_download_command_and_course_shared_data(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "shared"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "shared" / "oxford_flowers17").mkdir(parents=True)  # an empty folder is no copy
    for load, name, folder, copy in ((flowers17, "flowers17", "flowers17", "oxford_flowers17"),
                                     (dtd10, "dtd10", "dtd", "dtd_subset10"),
                                     (ukbench2000, "ukbench2000", "ukbench", "ukbench_subset2000")):
        expected = (f"Dataset '{name}' was not found under {re.escape(str(tmp_path / 'data' / folder))}\\. No shared "
                    f"copy \\(no {copy}/ in the shared data folder {re.escape(str(tmp_path / 'shared'))}\\) and no "
                    f"finished download\\. Download it with: python data_scripts/download.py {name} \\(or set "
                    f"COURSE_SHARED_DATA to a folder that holds {copy}/\\)")
        with pytest.raises(DatasetMissingError, match=expected):
            load()


def fake_flowers17(root: Path, labels_csv: str | None = None, train: str | None = None) -> Path:
    """A 17-image copy in the shared layout (one image per class), every image in train except the last."""
    names = [f"jpg/image_{k:04d}.jpg" for k in range(1, 18)]
    (root / "jpg").mkdir(parents=True)
    (root / "splits").mkdir()
    for name in names:
        Image.new("RGB", (8, 8)).save(root / name)
    rows = "".join(f"{n},{k},class{k},8,8,8,8\n" for k, n in enumerate(names, start=1))
    header = "path,label,class_name,orig_width,orig_height,width,height\n"
    (root / "labels.csv").write_text(labels_csv or header + rows)
    (root / "splits" / "train.txt").write_text(train if train is not None else "\n".join(names[:-1]) + "\n")
    (root / "splits" / "test.txt").write_text(names[-1] + "\n")
    return root


def test_flowers17_reads_a_copy_given_as_root(tmp_path):
    rec = flowers17(fake_flowers17(tmp_path / "f17"))
    assert len(rec) == 17 and rec.labels.tolist() == list(range(17))
    assert rec.split.tolist() == ["train"] * 16 + ["test"]
    assert rec.class_names == [f"class{k}" for k in range(1, 18)]


def test_flowers17_errors_name_the_file_and_line(tmp_path):
    header = "path,label,class_name\n"
    bad_label = header + "".join(f"jpg/image_{k:04d}.jpg,{k if k != 2 else 18},c{k}\n" for k in range(1, 18))
    with pytest.raises(ValueError, match=r"labels\.csv, line 3: label 18 is outside 1\.\.17"):
        flowers17(fake_flowers17(tmp_path / "a", labels_csv=bad_label))
    with pytest.raises(ValueError, match=r"train\.txt, line 1: 'jpg/nope\.jpg' is not in \S*/b/labels\.csv"):
        flowers17(fake_flowers17(tmp_path / "b", train="jpg/nope.jpg\n"))
    twice = r"train\.txt, line 2: 'jpg/image_0001\.jpg' is already in the train list"
    with pytest.raises(ValueError, match=twice):
        flowers17(fake_flowers17(tmp_path / "c", train="jpg/image_0001.jpg\njpg/image_0001.jpg\n"))
    with pytest.raises(ValueError, match=r"15 image\(s\) of \S*/d/labels\.csv are in no split list, e\.g\. jpg/image_0002\.jpg"):
        flowers17(fake_flowers17(tmp_path / "d", train="jpg/image_0001.jpg\n"))
    root = fake_flowers17(tmp_path / "e")
    (root / "jpg" / "image_0005.jpg").unlink()
    with pytest.raises(DatasetMissingError, match=r"Missing: jpg/image_0005\.jpg\..*COURSE_SHARED_DATA"):
        flowers17(root)


# --- the shipped split lists are the shared copies' ----------------------------------------------------------------


@pytest.mark.shared
def test_shipped_flowers17_lists_and_classes_are_the_shared_copys():
    root = shared_folder("oxford_flowers17")
    for part in ("train", "test"):
        assert split_list("flowers17", f"{part}.txt") == (root / "splits" / f"{part}.txt").read_text().split()
    rec = flowers17(root)
    assert rec.class_names == list(FLOWERS17_CLASSES)
    assert sorted(p.relative_to(root).as_posix() for p in rec.paths) == [f"jpg/image_{k:04d}.jpg"
                                                                         for k in range(1, 1361)]


@pytest.mark.shared
def test_shipped_dtd10_lists_are_the_split_of_the_shared_copy():
    root = shared_folder("dtd_subset10")
    rec = dtd10(root)
    relative = [p.relative_to(root).as_posix() for p in rec.paths]
    assert rec.class_names == list(DTD10_CLASSES)
    for part in ("train", "val", "test"):
        assert split_list("dtd10", f"{part}.txt") == sorted(np.asarray(relative)[rec.split == part].tolist())
    assert (rec.split == dtd_split(rec.labels, relative, seed=0)).all()


@pytest.mark.shared
def test_shipped_ukbench2000_list_is_the_shared_copys_images():
    root = shared_folder("ukbench_subset2000")
    assert split_list("ukbench2000", "images.txt") == sorted(f"full/{p.name}" for p in (root / "full").iterdir())


def _link_tree(pairs: list[tuple[Path, Path]]) -> None:
    for source, link in pairs:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source)


@pytest.mark.shared
def test_a_download_in_the_official_layouts_gives_the_shared_copys_classes_images_and_splits(tmp_path):
    """The shared images, linked into the layouts of 17flowers.tgz, dtd-r1.0.1.tar.gz and ukbench.zip."""
    flowers, dtd, uk = (shared_folder(f) for f in ("oxford_flowers17", "dtd_subset10", "ukbench_subset2000"))
    shared_flowers, shared_dtd, shared_uk = flowers17(flowers), dtd10(dtd), ukbench2000(uk)
    _link_tree([(p, tmp_path / "flowers17" / "jpg" / p.name) for p in shared_flowers.paths])
    _link_tree([(p, tmp_path / "dtd" / "dtd" / p.relative_to(dtd)) for p in shared_dtd.paths])
    extra = [(shared_uk.paths[i], tmp_path / "ukbench" / "full" / f"ukbench{2000 + i:05d}.jpg") for i in range(4)]
    _link_tree([(p, tmp_path / "ukbench" / "full" / p.name) for p in shared_uk.paths] + extra)

    def same(a, b) -> None:  # the same images (by relative path), labels, class names and split, in any order
        rows = [{p.relative_to(r.root).as_posix(): (int(k), str(s)) for p, k, s in zip(r.paths, r.labels, r.split,
                                                                                      strict=True)} for r in (a, b)]
        assert rows[0] == rows[1] and a.class_names == b.class_names

    same(flowers17(tmp_path / "flowers17"), shared_flowers)
    same(dtd10(tmp_path / "dtd"), shared_dtd)
    downloaded_uk = ukbench2000(tmp_path / "ukbench")
    assert [p.name for p in downloaded_uk.paths] == [p.name for p in shared_uk.paths]
    assert [q.positives for q in downloaded_uk.queries] == [q.positives for q in shared_uk.queries]


# --- the official layouts' own errors ------------------------------------------------------------------------------


def test_flowers17_official_split_needs_datasplits_mat_and_a_known_name(tmp_path):
    for k in range(1, 1361):
        (tmp_path / "jpg").mkdir(exist_ok=True)
        (tmp_path / "jpg" / f"image_{k:04d}.jpg").write_bytes(b"x")
    rec = flowers17(tmp_path)
    assert rec.source == "" and [int((rec.split == s).sum()) for s in ("train", "test")] == [1088, 272]
    with pytest.raises(DatasetMissingError, match=r"Missing: datasplits\.mat\..*download\.py flowers17"):
        flowers17(tmp_path, split="official1")
    with pytest.raises(ValueError, match=r"split 'official4' is not one of \('course', 'official1'"):
        flowers17(tmp_path, split="official4")
    (tmp_path / "jpg" / "image_0700.jpg").unlink()
    with pytest.raises(DatasetMissingError, match=r"Missing: jpg/image_0700\.jpg\. Download it with: python "
                                                  r"data_scripts/download\.py flowers17"):
        flowers17(tmp_path)


def test_ukbench2000_from_a_folder_with_a_gap_says_which_image_is_missing(tmp_path):
    (tmp_path / "full").mkdir()
    for i in range(2000):
        if i != 1234:
            (tmp_path / "full" / f"ukbench{i:05d}.jpg").write_bytes(b"x")
    with pytest.raises(DatasetMissingError, match=r"Missing: full/ukbench01234\.jpg\. Download it with: python "
                                                  r"data_scripts/download\.py ukbench2000"):
        ukbench2000(tmp_path)
