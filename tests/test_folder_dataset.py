"""``image_folder``: your own class sub-folders, with a seeded stratified split or train.txt / test.txt."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import datasets
from course_utils.datasets.folder import image_folder, write_split


def make_tree(root: Path, counts: dict[str, int]) -> Path:
    """``root/<class>/img_NN.<ext>`` in varied extension cases, plus files and folders to be ignored."""
    extensions = [".jpg", ".PNG", ".jpeg", ".Jpg", ".bmp", ".webp"]
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            extension = extensions[i % len(extensions)]
            Image.new("RGB", (6, 4), (i * 20, 0, 0)).save(root / name / f"img_{i:02d}{extension}")
        (root / name / "notes.txt").write_text("not an image")
        (root / name / ".hidden.jpg").write_bytes(b"")
    (root / ".thumbnails").mkdir()
    Image.new("RGB", (4, 4)).save(root / ".thumbnails" / "x.jpg")
    return root


def esc(path: Path) -> str:
    return re.escape(str(path))


def relative(record: datasets.DatasetRecord) -> list[str]:
    return [p.relative_to(record.root).as_posix() for p in record.paths]


def test_classes_images_and_labels(tmp_path):
    root = make_tree(tmp_path / "pets", {"dogs": 3, "cats": 6, "birds": 4})
    (root / "cats" / "kittens").mkdir()
    Image.new("RGB", (4, 4)).save(root / "cats" / "kittens" / "k.TIFF")
    rec = image_folder(root)
    assert rec.name == "folder:pets" and rec.task == "multiclass" and rec.root == root.resolve()
    assert rec.class_names == ["birds", "cats", "dogs"]
    names = relative(rec)
    assert names[:4] == ["birds/img_00.jpg", "birds/img_01.PNG", "birds/img_02.jpeg", "birds/img_03.Jpg"]
    assert "cats/kittens/k.TIFF" in names and len(rec) == 4 + 7 + 3
    assert not any("notes" in n or "hidden" in n or "thumbnails" in n for n in names)
    assert rec.labels.tolist() == [0] * 4 + [1] * 7 + [2] * 3


def test_seeded_split_is_stratified_two_to_one(tmp_path):
    rec = image_folder(make_tree(tmp_path / "data", {"a": 9, "b": 2, "c": 5, "d": 12}))
    expected_test = {0: 3, 1: 1, 2: 2, 3: 4}  # a third of each class (rounded), at least one
    for label, n_test in expected_test.items():
        mine = rec.split[rec.labels == label]
        assert (mine == "test").sum() == n_test and (mine == "train").sum() == len(mine) - n_test
    again = image_folder(tmp_path / "data", seed=0)
    assert (again.split == rec.split).all()
    assert any((image_folder(tmp_path / "data", seed=s).split != rec.split).any() for s in (1, 2, 3))


def test_write_split_then_split_files_reproduce_the_split(tmp_path):
    root = make_tree(tmp_path / "data", {"a": 7, "b": 5})
    rec = image_folder(root, seed=5)
    written = write_split(rec, tmp_path / "results")
    assert set(written) == {"train", "test"} and written["train"] == tmp_path / "results" / "train.txt"
    in_test = [n for n, s in zip(relative(rec), rec.split, strict=True) if s == "test"]
    assert written["test"].read_text().splitlines() == in_test
    assert not list((tmp_path / "results").glob("*.part"))
    for path in written.values():
        shutil.copy(path, root / path.name)
    for file in (root / "a").glob("img_0[56]*"):  # images added later are not in the frozen split
        shutil.copy(file, root / "a" / f"new_{file.name}")
    frozen = image_folder(root, seed=99)
    assert relative(frozen) == relative(rec) and (frozen.split == rec.split).all()
    assert frozen.protocol.startswith("split from train.txt")


def test_split_files_define_membership_and_accept_comments(tmp_path):
    root = make_tree(tmp_path / "data", {"a": 3, "b": 3})
    (root / "train.txt").write_text("# my split\nb/img_01.PNG\n\na/img_00.jpg\n")
    (root / "test.txt").write_text("a\\img_02.jpeg\nb/img_00.jpg\n")
    rec = datasets.load(f"folder:{root}")
    assert relative(rec) == ["a/img_00.jpg", "a/img_02.jpeg", "b/img_00.jpg", "b/img_01.PNG"]
    assert rec.split.tolist() == ["train", "test", "test", "train"] and rec.labels.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize(("train", "test", "error", "message"), [
    ("a/img_00.jpg\n", "a/img_01.PNG\nb/img_09.jpg\n", FileNotFoundError,
     r"test\.txt, line 2: image .*img_09\.jpg does not exist"),
    ("a/img_00.jpg\nimg_top.jpg\n", "", ValueError,
     r"train\.txt, line 2: 'img_top\.jpg' is not inside a class folder"),
    ("../outside/x.jpg\n", "", ValueError,
     r"train\.txt, line 1: '\.\./outside/x\.jpg' must be a path relative to"),
    ("a/notes.txt\n", "", FileNotFoundError,
     r"line 1: image .*notes\.txt does not exist or is not an image file"),
    ("a/img_00.jpg\nb/img_00.jpg\n", "a/img_00.jpg\n", ValueError,
     r"test\.txt, line 1: 'a/img_00\.jpg' is listed twice \(first in .*train\.txt, line 1\)"),
    ("a/img_00.jpg\n", "b/img_00.jpg\n", ValueError, r"train\.txt lists no image of class 'b'"),
])
def test_bad_split_files_name_the_file_and_line(tmp_path, train, test, error, message):
    root = make_tree(tmp_path / "data", {"a": 3, "b": 3})
    Image.new("RGB", (4, 4)).save(root / "img_top.jpg")
    (root / "train.txt").write_text(train)
    (root / "test.txt").write_text(test)
    with pytest.raises(error, match=message):
        image_folder(root)


def test_one_split_file_alone_is_an_error(tmp_path):
    root = make_tree(tmp_path / "data", {"a": 3, "b": 3})
    (root / "test.txt").write_text("a/img_00.jpg\n")
    with pytest.raises(FileNotFoundError, match=r"test\.txt exists but .*train\.txt does not"):
        image_folder(root)


def test_layout_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"Image folder {esc(tmp_path / 'nope')} does not exist"):
        image_folder(tmp_path / "nope")
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=f"{esc(tmp_path / 'file.jpg')} is not a folder"):
        image_folder(tmp_path / "file.jpg")
    (tmp_path / "empty").mkdir()
    no_classes = f"{esc(tmp_path / 'empty')} has no class sub-folders; expected PATH/<class name>"
    with pytest.raises(ValueError, match=no_classes):
        image_folder(tmp_path / "empty")
    make_tree(tmp_path / "one", {"only": 3})
    with pytest.raises(ValueError, match=r"has only one class folder \('only'\)"):
        image_folder(tmp_path / "one")
    root = make_tree(tmp_path / "hollow", {"a": 3, "b": 2})
    (root / "c").mkdir()
    (root / "c" / "readme.md").write_text("no images")
    no_images = rf"Class folder {esc(root / 'c')} holds no images \(extensions: \.bmp"
    with pytest.raises(ValueError, match=no_images):
        image_folder(root)
    make_tree(tmp_path / "single", {"a": 3, "b": 1})
    with pytest.raises(ValueError, match=r"single/b holds only 1 image; a train/test split needs at least 2"):
        image_folder(tmp_path / "single")


def test_write_split_refuses_paths_outside_the_root(tmp_path):
    rec = datasets.DatasetRecord(name="x", task="multiclass", root=tmp_path / "root",
                                 paths=[tmp_path / "elsewhere.jpg"], labels=np.array([0]))
    with pytest.raises(ValueError, match=r"elsewhere\.jpg is not inside its root"):
        write_split(rec, tmp_path / "out")
