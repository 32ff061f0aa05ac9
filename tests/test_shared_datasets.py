"""Loaders of the real subsets in the shared data folder (skipped when absent), and their errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import config, datasets
from course_utils.datasets import DatasetMissingError
from course_utils.datasets.shared import dtd10, dtd_split, flowers17


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


def test_missing_shared_folder_names_the_folder_and_course_shared_data(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path))
    for load, folder in ((flowers17, "oxford_flowers17"), (dtd10, "dtd_subset10")):
        expected = f"not found under {re.escape(str(tmp_path / folder))}.*COURSE_SHARED_DATA"
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
    with pytest.raises(ValueError, match=r"train\.txt, line 1: 'jpg/nope\.jpg' is not in labels\.csv"):
        flowers17(fake_flowers17(tmp_path / "b", train="jpg/nope.jpg\n"))
    twice = r"train\.txt, line 2: 'jpg/image_0001\.jpg' is already in the train list"
    with pytest.raises(ValueError, match=twice):
        flowers17(fake_flowers17(tmp_path / "c", train="jpg/image_0001.jpg\njpg/image_0001.jpg\n"))
    with pytest.raises(ValueError, match=r"15 image\(s\) of labels\.csv are in no split list"):
        flowers17(fake_flowers17(tmp_path / "d", train="jpg/image_0001.jpg\n"))
    root = fake_flowers17(tmp_path / "e")
    (root / "jpg" / "image_0005.jpg").unlink()
    with pytest.raises(DatasetMissingError, match=r"Missing: jpg/image_0005\.jpg\..*COURSE_SHARED_DATA"):
        flowers17(root)
