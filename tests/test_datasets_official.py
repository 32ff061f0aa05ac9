"""Loaders of the paper's benchmarks, on tiny trees written in each dataset's official file formats.

Expected values are the ones written by ``fixtures_official`` (see each ``make_*`` docstring); the last tests read
the real copies in ``../shared/data`` and skip when that folder is absent.
"""

from __future__ import annotations

import pickle

import fixtures_official as fx
import numpy as np
import pytest

from course_utils import config
from course_utils.datasets import DatasetMissingError, load, specs
from course_utils.datasets.flowers102 import CLASS_NAMES as FLOWER_NAMES
from course_utils.datasets.holidays import read_rotation_list, write_rotated_copies
from course_utils.datasets.oxford_paris import load_pickle_restricted

OFFICIAL = ("voc2007", "mit67", "cub200", "flowers102", "uiuc_apascal", "uiuc_ayahoo", "h3d", "oxford5k", "paris6k",
            "roxford5k", "rparis6k", "holidays", "ukbench", "sculptures6k")


def rel(record, index):
    """Path of image ``index`` relative to the record's root, with forward slashes."""
    return record.paths[index].relative_to(record.root).as_posix()


@pytest.mark.parametrize("name", OFFICIAL)
def test_missing_dataset_names_the_download_command(name, tmp_path):
    with pytest.raises(DatasetMissingError, match=rf"python data_scripts/download.py {name}\b"):
        load(name, root=tmp_path / "absent")


@pytest.mark.parametrize("name", ["voc2007", "mit67", "cub200", "h3d", "oxford5k", "holidays", "ukbench"])
def test_empty_folder_is_reported_as_missing_not_crashing(name, tmp_path):
    with pytest.raises(DatasetMissingError, match=f"Dataset '{name}' was not found"):
        load(name, root=tmp_path)


def test_default_root_is_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    fx.make_ukbench(tmp_path / "ukbench", n=4)
    record = load("ukbench")
    assert record.root == tmp_path / "ukbench" and len(record) == 4


def test_voc2007_labels_difficult_and_split(tmp_path):
    record = load("voc2007", root=fx.make_voc2007(tmp_path))
    assert record.task == "multilabel" and record.class_names == list(fx.VOC_CLASSES)
    assert [p.stem for p in record.paths] == ["000005", "000007", "000009", "000001", "000002"]
    assert list(record.split) == ["train", "val", "train", "test", "test"]
    car, dog, person = (fx.VOC_CLASSES.index(c) for c in ("car", "dog", "person"))
    expected = np.zeros((5, 20), dtype=int)
    expected[0, car] = expected[2, car] = expected[3, dog] = expected[4, person] = 1
    np.testing.assert_array_equal(record.labels, expected)
    difficult = np.zeros((5, 20), dtype=bool)
    difficult[2, car] = difficult[4, person] = True
    np.testing.assert_array_equal(record.difficult, difficult)
    assert record.boxes is None and record.paper_table == "Table 1"


def test_voc2007_rejects_a_bad_flag_with_file_and_line(tmp_path):
    fx.make_voc2007(tmp_path)
    bad = tmp_path / "VOCdevkit/VOC2007/ImageSets/Main/cat_test.txt"
    bad.write_text("000001 2\n000002 -1\n")
    with pytest.raises(ValueError, match=r"cat_test.txt, line 1: expected '<image id> <1\|-1\|0>'"):
        load("voc2007", root=tmp_path)


def test_voc2007_missing_image_is_named(tmp_path):
    fx.make_voc2007(tmp_path)
    (tmp_path / "VOCdevkit/VOC2007/JPEGImages/000009.jpg").unlink()
    with pytest.raises(DatasetMissingError, match=r"Missing: JPEGImages/000009.jpg"):
        load("voc2007", root=tmp_path)


def test_mit67_uses_only_the_official_lists(tmp_path):
    record = load("mit67", root=fx.make_mit67(tmp_path))
    assert record.class_names == ["bedroom", "kitchen"]
    assert [rel(record, i) for i in range(len(record))] == [
        "Images/kitchen/int1.jpg", "Images/kitchen/int2.jpg", "Images/bedroom/b1.jpg", "Images/bedroom/b2.jpg",
        "Images/kitchen/int3.jpg", "Images/bedroom/b3.jpg",
    ]
    assert list(record.labels) == [1, 1, 0, 0, 1, 0]
    assert list(record.split) == ["train"] * 4 + ["test"] * 2


def test_cub200_boxes_labels_split(tmp_path):
    record = load("cub200", root=fx.make_cub200(tmp_path))
    assert record.class_names == ["Black_footed_Albatross", "Laysan_Albatross"]
    assert list(record.labels) == [0, 0, 1]
    assert list(record.split) == ["train", "test", "train"]
    np.testing.assert_allclose(record.boxes, [[60, 27, 385, 331], [1, 2, 4, 6], [10.5, 20.5, 15.5, 26.5]])
    assert rel(record, 2) == "CUB_200_2011/images/002.Laysan_Albatross/b_1.jpg"


def test_cub200_inconsistent_files_are_reported(tmp_path):
    fx.make_cub200(tmp_path)
    (tmp_path / "CUB_200_2011/bounding_boxes.txt").write_text("1 1 2 3 4\n")
    with pytest.raises(ValueError, match=r"bounding_boxes.txt has no row for image ids \[2, 3\]"):
        load("cub200", root=tmp_path)


def test_flowers102_official_mat_files(tmp_path):
    record = load("flowers102", root=fx.make_flowers102(tmp_path))
    assert list(record.labels) == [76, 76, 0, 101, 0, 1]
    assert list(record.split) == ["train", "val", "train", "test", "test", "test"]
    assert rel(record, 3) == "jpg/image_00004.jpg"
    assert record.class_names == list(FLOWER_NAMES) and len(FLOWER_NAMES) == 102
    assert FLOWER_NAMES[76] == "passion flower" and FLOWER_NAMES[0] == "pink primrose"


def test_flowers102_inconsistent_split_is_reported(tmp_path):
    from scipy.io import savemat

    fx.make_flowers102(tmp_path)
    savemat(tmp_path / "setid.mat", {"trnid": [[3, 1]], "valid": [[2]], "tstid": [[4, 5]]})
    with pytest.raises(ValueError, match=r"setid.mat: images \[6\] are in no split"):
        load("flowers102", root=tmp_path)
    savemat(tmp_path / "setid.mat", {"trnid": [[3, 1]], "tstid": [[4, 5, 6]]})
    with pytest.raises(ValueError, match=r"setid.mat has no variable 'valid'"):
        load("flowers102", root=tmp_path)


def test_flowers102_names_from_cat_to_name_json(tmp_path):
    record = load("flowers102", root=fx.make_flowers102(tmp_path, with_names=True))
    assert record.class_names[0] == "custom one" and record.class_names[76] == "custom seventy-seven"
    assert record.class_names[1] == FLOWER_NAMES[1]  # ids the json lacks fall back to the shipped list


def test_flowers102_prefers_the_shared_copy_then_a_finished_download(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "no-shared"))
    with pytest.raises(DatasetMissingError, match=r"No shared copy.*download.py flowers102"):
        load("flowers102")
    downloaded = tmp_path / "data" / "flowers102"
    fx.make_flowers102(downloaded)
    with pytest.raises(DatasetMissingError, match="no finished download"):  # files without their markers
        load("flowers102")
    for artifact in specs.get("flowers102").artifacts:
        specs.marker(downloaded, artifact).parent.mkdir(exist_ok=True)
        specs.marker(downloaded, artifact).write_text("ok")
    assert load("flowers102").root == downloaded
    shared = tmp_path / "shared"
    fx.make_flowers102(shared / "oxford_flowers102")
    monkeypatch.setenv("COURSE_SHARED_DATA", str(shared))
    assert load("flowers102").root == shared / "oxford_flowers102"


def test_uiuc_apascal_objects_boxes_attributes(tmp_path):
    record = load("uiuc_apascal", root=fx.make_uiuc(tmp_path))
    assert record.task == "attributes" and record.class_names[:2] == ["attr0", "attr1"]
    assert [p.name for p in record.paths] == ["2008_000008.jpg", "2008_000008.jpg", "2008_000009.jpg"]
    assert list(record.split) == ["train", "train", "test"]
    np.testing.assert_allclose(record.boxes, [[51, 85, 470, 419], [156, 42, 289, 167], [0, 0, 8, 6]])
    assert record.labels.shape == (3, 64)
    assert np.flatnonzero(record.labels[0]).tolist() == [0, 63] and np.flatnonzero(record.labels[1]).tolist() == [5]
    assert record.labels[2].sum() == 0


def test_uiuc_ayahoo_trains_on_apascal_tests_on_ayahoo(tmp_path):
    record = load("uiuc_ayahoo", root=fx.make_uiuc(tmp_path))
    assert list(record.split) == ["train", "train", "test"]
    assert rel(record, 2) == "ayahoo_test_images/bag_1.jpg"
    assert np.flatnonzero(record.labels[2]).tolist() == [10, 11]
    np.testing.assert_allclose(record.boxes[2], [1, 2, 4, 5])


def test_uiuc_wrong_field_count_is_reported(tmp_path):
    fx.make_uiuc(tmp_path)
    (tmp_path / "attribute_data/apascal_test.txt").write_text("x.jpg cow 1 1 2 2 0 1\n")
    with pytest.raises(ValueError, match=r"apascal_test.txt, line 1: .*\(70 fields\), got 8"):
        load("uiuc_apascal", root=tmp_path)


def test_h3d_unknown_is_difficult_and_nan_box_kept(tmp_path):
    record = load("h3d", root=fx.make_h3d(tmp_path))
    assert record.class_names[0] == "male" and record.class_names[-1] == "long pants"
    assert list(record.split) == ["train", "train", "test"]
    assert rel(record, 2) == "attributes_dataset/test/00001.jpg"
    np.testing.assert_array_equal(record.labels[0], [1, 0, 0, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(record.difficult[0], [0, 0, 1, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(record.labels[2], [0] * 8 + [1])
    assert record.difficult[2].sum() == 8
    np.testing.assert_allclose(record.boxes[0], [10, 20, 40, 60])
    assert np.isnan(record.boxes[1]).all()
    np.testing.assert_allclose(record.boxes[2], [1.5, 2.5, 4.5, 6.5])


def test_oxford5k_queries_boxes_positives_junk(tmp_path):
    record = load("oxford5k", root=fx.make_oxford(tmp_path))
    names = [p.stem for p in record.paths]
    assert names == ["a_000000", "a_000001", "a_000002", "a_000003", "a_000004", "b_000000", "b_000001"]
    a, b = record.queries
    assert (a.name, a.index, a.box) == ("a_1", 0, (136.5, 34.1, 648.5, 955.7))
    assert a.positives == [0, 2, 3] and a.junk == [4]  # good + ok; the query image stays a positive
    assert (b.name, b.index, b.positives, b.junk) == ("b_1", 6, [5], [])
    assert list(record.database) == list(range(7))


def test_oxford5k_incomplete_ground_truth(tmp_path):
    fx.make_oxford(tmp_path)
    (tmp_path / "gt/b_1_junk.txt").unlink()
    with pytest.raises(ValueError, match=r"b_1_query.txt has no b_1_junk.txt"):
        load("oxford5k", root=tmp_path)


def test_paris6k_drops_corrupt_images(tmp_path):
    record = load("paris6k", root=fx.make_paris(tmp_path))
    assert [p.stem for p in record.paths] == ["paris_defense_000000", "paris_defense_000001", "paris_louvre_000000"]
    (query,) = record.queries
    assert query.positives == [1] and query.junk == [2] and query.box == (10.0, 20.0, 30.0, 40.0)
    kept = load("paris6k", root=tmp_path, drop_corrupt=False)
    assert len(kept) == 4 and kept.queries[0].positives == [1, 3]


@pytest.mark.parametrize(("setup", "positives", "junk"), [
    ("easy", ([0, 2], []), ([3, 4], [0, 1])),
    ("medium", ([0, 2, 3], [1]), ([4], [0])),
    ("hard", ([3], [1]), ([0, 2, 4], [0])),
])
def test_roxford5k_setups(tmp_path, setup, positives, junk):
    record = load("roxford5k", root=fx.make_revisited(tmp_path), setup=setup)
    assert [p.stem for p in record.paths] == ["d0", "d1", "d2", "d3", "d4", "q0", "q1"]
    assert list(record.database) == [0, 1, 2, 3, 4]
    q0, q1 = record.queries
    assert (q0.index, q1.index) == (5, 6)
    assert (q0.positives, q1.positives) == positives and (q0.junk, q1.junk) == junk
    assert q0.box == (1.0, 2.0, 3.0, 4.0) and q1.box == (5.0, 6.0, 7.0, 8.0)


def test_rparis6k_reads_a_protocol_2_pickle(tmp_path):
    record = load("rparis6k", root=fx.make_revisited(tmp_path, "rparis6k", protocol=2))
    assert len(record) == 7 and record.queries[0].positives == [0, 2, 3]


def test_revisited_unknown_setup(tmp_path):
    with pytest.raises(ValueError, match=r"setup must be one of \('easy', 'medium', 'hard'\); got 'medum'"):
        load("roxford5k", root=fx.make_revisited(tmp_path), setup="medum")


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code(tmp_path):
    fx.make_revisited(tmp_path)
    (tmp_path / "gnd_roxford5k.pkl").write_bytes(pickle.dumps({"imlist": [_Exploit()]}))
    with pytest.raises(pickle.UnpicklingError, match=r"Refusing to load (posix|nt|os)\.system"):
        load("roxford5k", root=tmp_path)
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps({"a": np.arange(3), "b": (1.5, "x", [True])}))
    loaded = load_pickle_restricted(path)
    np.testing.assert_array_equal(loaded["a"], [0, 1, 2])
    assert loaded["b"] == (1.5, "x", [True])


def test_holidays_queries_exclude_themselves(tmp_path):
    record = load("holidays", root=fx.make_holidays(tmp_path))
    assert [p.stem for p in record.paths] == ["100000", "100001", "100002", "100100", "100101"]
    first, second = record.queries
    assert (first.index, first.positives, first.junk) == (0, [1, 2], [0])
    assert (second.index, second.positives, second.junk) == (3, [4], [3])


def test_holidays_group_without_query_image(tmp_path):
    fx.make_holidays(tmp_path)
    (tmp_path / "jpg/100100.jpg").unlink()
    with pytest.raises(ValueError, match=r"group 1001 has no query image 100100.jpg"):
        load("holidays", root=tmp_path)


def test_holidays_rotation_list_builds_jpg_rotated(tmp_path):
    fx.make_holidays(tmp_path)
    listing = fx.write(tmp_path / "rotations.txt", "# name degrees\n100001.jpg 90\n100101.jpg 180\n")
    assert read_rotation_list(listing) == {"100001.jpg": 90, "100101.jpg": 180}
    with pytest.raises(DatasetMissingError, match=r"No jpg_rotated/ folder.*write_rotated_copies"):
        load("holidays", root=tmp_path, rotated=True)
    assert write_rotated_copies(tmp_path, listing) == 2
    from PIL import Image

    with Image.open(tmp_path / "jpg_rotated/100001.jpg") as turned, Image.open(tmp_path / "jpg_rotated/100000.jpg") as same:
        assert turned.size == (6, 8) and same.size == (8, 6)
    assert (tmp_path / "jpg_rotated/100000.jpg").read_bytes() == (tmp_path / "jpg/100000.jpg").read_bytes()
    record = load("holidays", root=tmp_path, rotated=True)
    assert record.paths[1].parent.name == "jpg_rotated" and "re-oriented" in record.protocol


def test_holidays_bad_rotation_list(tmp_path):
    fx.make_holidays(tmp_path)
    listing = fx.write(tmp_path / "rotations.txt", "100001.jpg 45\n")
    with pytest.raises(ValueError, match=r"rotations.txt, line 1: expected '<image name> <90\|180\|270>'"):
        write_rotated_copies(tmp_path, listing)
    fx.write(listing, "999999.jpg 90\n")
    with pytest.raises(FileNotFoundError, match=r"names images that are not in .*jpg: \['999999.jpg'\]"):
        write_rotated_copies(tmp_path, listing)


def test_ukbench_groups_of_four_query_included(tmp_path):
    record = load("ukbench", root=fx.make_ukbench(tmp_path, n=8))
    assert len(record) == 8 and len(record.queries) == 8
    assert record.queries[0].positives == [0, 1, 2, 3]
    assert record.queries[6].positives == [4, 5, 6, 7] and record.queries[6].junk == []


def test_ukbench_gap_in_numbering(tmp_path):
    fx.make_ukbench(tmp_path, n=8)
    (tmp_path / "full/ukbench00002.jpg").unlink()
    with pytest.raises(ValueError, match=r"no gaps, a multiple of 4 images; found 7"):
        load("ukbench", root=tmp_path)


@pytest.mark.parametrize("gt_format", ["oxford", "blocks"])
def test_sculptures6k_test_half(tmp_path, gt_format):
    record = load("sculptures6k", root=fx.make_sculptures(tmp_path, gt_format))
    assert [p.stem for p in record.paths] == ["s0", "s1", "s2", "t0", "t1", "t2", "t3"]
    assert list(record.split) == ["train"] * 3 + ["test"] * 4 and list(record.database) == [3, 4, 5, 6]
    (query,) = record.queries  # the train-half query is not searched
    assert query.index == 3 and query.positives == [4, 5] and query.junk == [6]
    assert query.box == ((2.0, 2.0, 6.0, 6.0) if gt_format == "oxford" else None)


def test_sculptures6k_train_and_all(tmp_path):
    fx.make_sculptures(tmp_path)
    train = load("sculptures6k", root=tmp_path, split="train")
    assert list(train.database) == [0, 1, 2] and [q.index for q in train.queries] == [0]
    assert train.queries[0].positives == [1] and train.queries[0].junk == [2]
    everything = load("sculptures6k", root=tmp_path, split="all")
    by_name = {q.name: q for q in everything.queries}
    assert by_name["q_train"].positives == [1, 6] and by_name["q_test"].positives == [4, 5, 1]
    with pytest.raises(ValueError, match="split must be 'train', 'test' or 'all'; got 'val'"):
        load("sculptures6k", root=tmp_path, split="val")


# --- the real copies in ../shared/data ---------------------------------------------------------------------------

def needs_shared(name: str) -> pytest.MarkDecorator:
    """Skip unless the shared data folder holds a copy of ``name`` (absent, or COURSE_SHARED_DATA set elsewhere)."""
    return pytest.mark.skipif(specs.shared_copy(name) is None, reason=f"no shared copy of {name}")


@pytest.mark.shared
@needs_shared("flowers102")
def test_flowers102_shared_copy_official_split(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # no download there: the shared copy is used
    record = load("flowers102")
    assert record.root == config.shared_data_dir() / "oxford_flowers102"
    counts = {s: int((record.split == s).sum()) for s in ("train", "val", "test")}
    assert counts == {"train": 1020, "val": 1020, "test": 6149}
    assert len(record) == 8189 and len(record.class_names) == 102
    assert sorted(np.unique(record.labels)) == list(range(102))
    assert np.bincount(record.labels[record.split == "train"]).tolist() == [10] * 102
    assert record.labels[0] == 76 and record.class_names[76] == "passion flower"  # image_00001, per the README


@pytest.mark.shared
@needs_shared("ukbench2000")
def test_ukbench2000_shared_copy():
    record = load("ukbench2000")
    assert len(record) == 2000 and len(record.queries) == 2000
    groups = {tuple(q.positives) for q in record.queries}
    assert len(groups) == 500 and all(len(g) == 4 for g in groups)
    assert record.queries[1999].positives == [1996, 1997, 1998, 1999]
    assert record.paths[1999].name == "ukbench01999.jpg"


def test_ukbench2000_without_shared_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "absent"))
    with pytest.raises(DatasetMissingError, match=r"shared data folder is absent.*COURSE_SHARED_DATA"):
        load("ukbench2000")
