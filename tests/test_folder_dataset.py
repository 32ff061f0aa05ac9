"""``image_folder``: your own class sub-folders, with a seeded stratified split or train.txt / test.txt."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import datasets
from course_utils.datasets.folder import image_folder, ns_groups, retrieval_folder, write_split
from course_utils.metrics import RETRIEVAL_MAP


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


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are UTF-16: no undecodable bytes")
def test_file_names_that_are_not_utf8_round_trip_through_the_split_files(tmp_path):
    root = make_tree(tmp_path / "data", {"a": 3, "b": 3})
    odd = Path(os.fsdecode(os.fsencode(root / "a") + b"/\xe9t\xe9.jpg"))  # Latin-1 bytes, not UTF-8
    Image.new("RGB", (6, 4)).save(odd)
    rec = image_folder(root, seed=1)
    assert odd in rec.paths
    written = write_split(rec, tmp_path / "results")
    listed = b"".join(path.read_bytes() for path in written.values())
    assert b"a/\xe9t\xe9.jpg\n" in listed  # the name's own bytes
    for path in written.values():
        shutil.copy(path, root / path.name)
    frozen = image_folder(root)
    assert frozen.paths == rec.paths and (frozen.split == rec.split).all()


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


# --- retrieval folders ------------------------------------------------------------------------------------------


def make_groups(root: Path, counts: dict[str, int], distractors: int = 0) -> Path:
    """``root/<group>/p_N.jpg`` (``counts[group]`` each), ``distractors`` images directly in ``root``, and files
    that must be ignored (a text file, a hidden image, a hidden folder)."""
    for g, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (6, 4), (40 * g, 20 * i, 0)).save(root / name / f"p_{i}.jpg")
    for i in range(distractors):
        Image.new("RGB", (6, 4), (0, 0, 30 * i)).save(root / f"other_{i}.png")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.jpg").write_bytes(b"")
    (root / ".thumbnails").mkdir()
    Image.new("RGB", (4, 4)).save(root / ".thumbnails" / "x.jpg")
    return root


def test_retrieval_folder_queries_every_grouped_photo_against_the_rest(tmp_path):
    root = make_groups(tmp_path / "trip", {"tower": 3, "bridge": 2}, distractors=2)
    rec = datasets.load(f"retrieval-folder:{root}")
    assert rec.name == "retrieval-folder:trip" and rec.task == "retrieval" and rec.root == root.resolve()
    assert relative(rec) == ["bridge/p_0.jpg", "bridge/p_1.jpg", "tower/p_0.jpg", "tower/p_1.jpg", "tower/p_2.jpg",
                             "other_0.png", "other_1.png"]
    assert rec.database.tolist() == list(range(7)) and set(rec.split.tolist()) == {"db"}
    assert [(q.index, q.positives, q.junk, q.name) for q in rec.queries] == [
        (0, [1], [0], "bridge/p_0.jpg"), (1, [0], [1], "bridge/p_1.jpg"),
        (2, [3, 4], [2], "tower/p_0.jpg"), (3, [2, 4], [3], "tower/p_1.jpg"), (4, [2, 3], [4], "tower/p_2.jpg")]
    assert rec.protocol.startswith("2 groups, 2 distractors") and "N-S" not in rec.protocol
    assert not ns_groups(rec)


def test_retrieval_folder_is_scored_with_the_query_left_out(tmp_path):
    from course_utils.retrieval import evaluate_retrieval

    rec = retrieval_folder(make_groups(tmp_path / "trip", {"a": 2, "b": 3}))
    # Image order: a/p_0, a/p_1, b/p_0, b/p_1, b/p_2 (indices 0-4); each query ranks itself first: it is ignored.
    ranks = np.array([[0, 2, 1, 3, 4],   # a/p_0: its positive (1) second once the query is dropped: (0 + 1/2)/2
                      [1, 0, 2, 3, 4],   # a/p_1: its positive first: 1
                      [2, 3, 4, 0, 1],   # b/p_0: both positives first: 1
                      [3, 0, 2, 1, 4],   # b/p_1: positives 2nd and 4th: 1/2 (0 + 1/2)/2 + 1/2 (1/3 + 2/4)/2 = 1/3
                      [4, 2, 3, 0, 1]])  # b/p_2: 1
    scores = evaluate_retrieval(rec, ranks=ranks)  # trapezoid AP, course_utils.metrics.retrieval_ap
    assert scores.ap.tolist() == pytest.approx([1 / 4, 1, 1, 1 / 3, 1])
    assert scores.map == pytest.approx(43 / 60)
    assert scores.n_queries == 5 and scores.ns_score is None


def test_groups_of_four_announce_the_ns_score(tmp_path):
    rec = retrieval_folder(make_groups(tmp_path / "objects", {"cup": 4, "pen": 4}))
    assert ns_groups(rec) and "N-S score too (query counted, as in UKBench)" in rec.protocol
    assert rec.metric is RETRIEVAL_MAP
    assert not ns_groups(retrieval_folder(make_groups(tmp_path / "mixed", {"cup": 4, "pen": 3})))


def test_excluded_images_leave_the_record_and_a_lone_survivor_becomes_a_distractor(tmp_path):
    root = make_groups(tmp_path / "trip", {"tower": 3, "bridge": 2}, distractors=1)
    rec = retrieval_folder(root, exclude=[root / "bridge" / "p_1.jpg", root / "tower" / "p_0.jpg"])
    assert relative(rec) == ["tower/p_1.jpg", "tower/p_2.jpg", "other_0.png", "bridge/p_0.jpg"]
    assert [(q.index, q.positives) for q in rec.queries] == [(0, [1]), (1, [0])]
    assert "group 'bridge' has fewer than 2 usable images: its rest is searched as a distractor" in rec.protocol
    assert ns_groups(retrieval_folder(make_groups(tmp_path / "four", {"a": 4, "b": 5}),
                                      exclude=[tmp_path / "four" / "b" / "p_4.jpg"]))


def test_retrieval_folder_layout_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"Image folder {esc(tmp_path / 'nope')} does not exist; expected "
                                                r"PATH/<group>/<image>"):
        retrieval_folder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.jpg")
    with pytest.raises(ValueError, match=f"{esc(tmp_path / 'flat')} has no group sub-folders"):
        retrieval_folder(tmp_path / "flat")
    make_groups(tmp_path / "lone", {"a": 2, "b": 1})
    with pytest.raises(ValueError, match=f"Group folder {esc(tmp_path / 'lone' / 'b')} holds 1 image\\(s\\); a group "
                                         "needs at least 2 photos"):
        retrieval_folder(tmp_path / "lone")
    make_groups(tmp_path / "single", {"a": 3})
    with pytest.raises(ValueError, match="has a single group and no distractor: every searched image is a positive"):
        retrieval_folder(tmp_path / "single")
    assert len(retrieval_folder(make_groups(tmp_path / "with_others", {"a": 3}, distractors=1)).queries) == 3
    with pytest.raises(ValueError, match=r"no group has 2 usable images left"):
        retrieval_folder(tmp_path / "with_others", exclude=[tmp_path / "with_others" / "a" / f"p_{i}.jpg"
                                                            for i in range(2)])
