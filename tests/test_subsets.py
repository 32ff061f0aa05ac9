"""course_utils.datasets.subsets: smaller records cut from a dataset, checked on hand-built records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import classes_record, few_shot_record

from course_utils import metrics
from course_utils.datasets import subsets
from course_utils.datasets.base import DatasetRecord, Query


def test_class_subset_keeps_the_chosen_classes_relabelled_in_the_order_given():
    record = classes_record()
    subset = subsets.class_subset(record, ["c", 0], test_per_class=2)
    # class c (label 2): train 2, 5; val 8; test 11, 14 (17 dropped by the cap); class a (0): 0, 3, 6, 9, 12
    assert [p.name for p in subset.paths] == [f"im{i:02d}.png" for i in (0, 2, 3, 5, 6, 8, 9, 11, 12, 14)]
    assert subset.labels.tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert subset.class_names == ["c", "a"]
    assert subset.split.tolist() == ["train"] * 4 + ["val"] * 2 + ["test"] * 4
    assert subset.protocol == "toy protocol | subset: 2 classes, at most 2 test images per class"
    assert len(subsets.class_subset(record, [1]).indices("test")) == 3  # no cap: every test image of class b


def test_class_subset_rejects_unknown_repeated_or_multilabel_classes_clearly():
    record = classes_record()
    with pytest.raises(ValueError, match=r"'toy' has no class 'd'; its classes start \['a', 'b', 'c'\]"):
        subsets.class_subset(record, ["a", "d"])
    with pytest.raises(ValueError, match="Class id 3 is outside 0..2"):
        subsets.class_subset(record, [3])
    with pytest.raises(ValueError, match="needs distinct classes"):
        subsets.class_subset(record, ["a", 0])
    with pytest.raises(ValueError, match="test_per_class must be at least 1"):
        subsets.class_subset(record, ["a"], test_per_class=0)
    record.labels = np.zeros((18, 2), dtype=int)
    with pytest.raises(ValueError, match="needs a single-label dataset"):
        subsets.class_subset(record, ["a"])


def _retrieval_record() -> DatasetRecord:
    """Twelve images in groups of four (UKBench style); every image queries all; image 1 is junk for query 0."""
    queries = [Query(i, positives=list(range(i - i % 4, i - i % 4 + 4)), junk=[1] if i == 0 else [], name=f"q{i}")
               for i in range(12)]
    return DatasetRecord("groups", "retrieval", Path("/r"), [Path(f"/r/{i}.jpg") for i in range(12)],
                         queries=queries, database=np.arange(12), metric=metrics.NS_SCORE, protocol="groups of 4")


def test_retrieval_subset_keeps_the_first_images_and_cuts_the_ground_truth_to_them():
    subset = subsets.retrieval_subset(_retrieval_record(), 6)
    assert [p.name for p in subset.paths] == [f"{i}.jpg" for i in range(6)]
    assert [q.index for q in subset.queries] == [0, 1, 2, 3, 4, 5]
    assert subset.queries[4].positives == [4, 5] and subset.queries[0].positives == [0, 1, 2, 3]
    assert subset.queries[0].junk == [1] and subset.queries[0].name == "q0"
    assert subset.database.tolist() == [0, 1, 2, 3, 4, 5]
    assert subset.metric is metrics.NS_SCORE and subset.protocol == "groups of 4 | subset: first 6 images, 6 queries"
    assert len(_retrieval_record().queries[4].positives) == 4, "the original record must stay untouched"


def test_retrieval_subset_rejects_bad_sizes_and_other_tasks():
    with pytest.raises(ValueError, match="n_images must be in 1..12 for 'groups'; got 13"):
        subsets.retrieval_subset(_retrieval_record(), 13)
    with pytest.raises(ValueError, match="needs a retrieval dataset; 'toy' is 'multiclass'"):
        subsets.retrieval_subset(classes_record(), 2)


def test_few_shot_indices_keep_per_class_training_images_and_every_test_image(tmp_path):
    record = few_shot_record(tmp_path)
    chosen = subsets.few_shot_indices(record, 2, seed=3)
    assert np.all(np.diff(chosen) > 0)
    train = chosen[record.split[chosen] == "train"]
    assert np.bincount(record.labels[train]).tolist() == [2, 2, 2]
    assert chosen[record.split[chosen] == "test"].tolist() == list(range(15, 21))
    assert np.array_equal(subsets.few_shot_indices(record, 2, seed=3), chosen)
    assert len({tuple(subsets.few_shot_indices(record, 2, seed=s)) for s in range(5)}) > 1
    assert subsets.few_shot_indices(record, 5).tolist() == list(range(21))


def test_few_shot_indices_explain_impossible_requests(tmp_path):
    record = few_shot_record(tmp_path)
    with pytest.raises(ValueError, match=r"class 0 has 5 training images, fewer than per_class=6; ask for at most 5"):
        subsets.few_shot_indices(record, 6)
    with pytest.raises(ValueError, match="per_class must be at least 1; got 0"):
        subsets.few_shot_indices(record, 0)
    record.task = "attributes"
    with pytest.raises(ValueError, match="needs a single-label dataset; 'toy' is 'attributes'"):
        subsets.few_shot_indices(record, 1)


def test_class_subset_covers_every_chosen_class_in_each_split_with_the_expected_counts():
    # 4 classes of unequal size: class k has k + 2 training images and k + 1 test images (ids in label order)
    labels = np.array([k for k in range(4) for _ in range(k + 2)] + [k for k in range(4) for _ in range(k + 1)])
    split = np.array(["train"] * 14 + ["test"] * 10)
    root = Path("/nonexistent")
    record = DatasetRecord("uneven", "multiclass", root, [root / f"{i}.png" for i in range(24)], labels=labels,
                           class_names=["w", "x", "y", "z"], split=split, protocol="p")
    subset = subsets.class_subset(record, ["z", "x"], test_per_class=2)
    # z (3): train 9..13 (5), test 20..23 capped to 20, 21; x (1): train 2..4 (3), test 15, 16 (2, under the cap)
    assert len(subset) == 5 + 2 + 3 + 2
    assert [int(p.stem) for p in subset.paths] == [2, 3, 4, 9, 10, 11, 12, 13, 15, 16, 20, 21]
    train, test = subset.labels[subset.split == "train"], subset.labels[subset.split == "test"]
    assert np.bincount(train).tolist() == [5, 3] and np.bincount(test).tolist() == [2, 2]
    assert subset.class_names == ["z", "x"] and set(subset.labels.tolist()) == {0, 1}
    assert len(record) == 24 and record.class_names == ["w", "x", "y", "z"], "the original record must stay untouched"


def test_few_shot_indices_have_per_class_times_classes_plus_every_test_image(tmp_path):
    record = few_shot_record(tmp_path)  # 3 classes of 5 training images, 6 test images
    for per_class in (1, 3, 5):
        chosen = subsets.few_shot_indices(record, per_class, seed=1)
        assert chosen.shape == (3 * per_class + 6,) and chosen.dtype.kind == "i"
        assert set(record.labels[chosen[record.split[chosen] == "train"]].tolist()) == {0, 1, 2}


def test_retrieval_subset_drops_queries_left_without_positives_and_keeps_no_database_as_none():
    queries = [Query(0, positives=[0, 5], junk=[6], name="a"), Query(4, positives=[7, 8], name="b"),
               Query(2, positives=[3], name="c")]
    record = DatasetRecord("three", "retrieval", Path("/r"), [Path(f"/r/{i}.jpg") for i in range(9)],
                           queries=queries, database=None, protocol="p")
    subset = subsets.retrieval_subset(record, 5)
    # query a keeps positive 0 (5 and junk 6 are cut); b has no positive below 5: dropped; c keeps 3
    assert [(q.name, q.positives, q.junk) for q in subset.queries] == [("a", [0], []), ("c", [3], [])]
    assert subset.database is None and len(subset) == 5
    assert subset.protocol == "p | subset: first 5 images, 2 queries"
    with pytest.raises(ValueError, match=r"The first 1 images of 'three' hold no query with a positive; take more"):
        subsets.retrieval_subset(DatasetRecord("three", "retrieval", Path("/r"), record.paths,
                                               queries=[Query(4, positives=[7])], protocol="p"), 1)
