"""course_utils.widgets: the explorers' pure functions against hand-computed values, and their widgets' wiring."""

from __future__ import annotations

import html
from dataclasses import fields, replace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from course_utils import backbones, classify, notebook, widgets
from course_utils.datasets.base import DatasetRecord, Query
from course_utils.retrieval import RetrievalOutcome, evaluate_retrieval

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS, DIMS = 3, 10, 5, 6


@pytest.fixture(autouse=True)
def _close_figures():
    with matplotlib.rc_context():
        yield
    plt.close("all")


# --- prediction explorer -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained_lite0():
    """The real network with random weights: the explorer's plumbing does not need ImageNet's, and it builds fast."""
    return backbones.load("efficientnet_lite0", pretrained=False)


def test_format_predictions_aligns_probability_name_and_index():
    text = widgets.format_predictions([(285, "Egyptian cat", 0.7931), (282, "tiger cat", 0.0878)])
    assert text == " 79.3%  Egyptian cat  [285]\n  8.8%  tiger cat  [282]"


def test_prediction_explorer_shows_the_picked_photos_predictions(untrained_lite0):
    photos = notebook.sample_photos(["chelsea", "coffee"])
    expected = untrained_lite0.predict(list(photos.values()), topk=3)
    explorer = widgets.prediction_explorer(untrained_lite0, photos, topk=3)
    assert explorer.dropdown.options == ("chelsea", "coffee") and explorer.dropdown.value == "chelsea"
    assert explorer.table.value == f"<pre>{html.escape(widgets.format_predictions(expected[0]))}</pre>"
    first_photo = bytes(explorer.photo.value)
    assert first_photo.startswith(PNG_MAGIC)
    explorer.dropdown.value = "coffee"
    assert explorer.table.value == f"<pre>{html.escape(widgets.format_predictions(expected[1]))}</pre>"
    assert bytes(explorer.photo.value).startswith(PNG_MAGIC) and bytes(explorer.photo.value) != first_photo
    assert explorer.table.value.count("\n") == 2  # topk=3 lines


def test_prediction_explorer_needs_a_photo(untrained_lite0):
    with pytest.raises(ValueError, match="needs at least one photo"):
        widgets.prediction_explorer(untrained_lite0, {})


# --- classifier explorer -----------------------------------------------------------------------------------------


def _classification_record(tmp_path) -> DatasetRecord:
    labels, split = [], []
    for part, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for label in range(N_CLASSES):
            labels += [label] * count
            split += [part] * count
    paths = [tmp_path / f"image_{i:02d}.jpg" for i in range(len(labels))]  # never opened: features are given
    return DatasetRecord(name="toy", task="multiclass", root=tmp_path, paths=paths, labels=np.array(labels),
                         class_names=["a", "b", "c"], split=np.array(split))


def _features(record: DatasetRecord) -> dict[str, np.ndarray]:
    """'separable': each class its own axis plus small noise; 'constant': every image the same vector.

    Two views each: view 1 of 'mixed' is separable, view 0 is constant, so reading view 0 only must give chance.
    """
    rng = np.random.default_rng(0)
    n = len(record)
    separable = 5 * np.eye(DIMS)[record.labels] + 0.1 * rng.standard_normal((n, DIMS))
    constant = np.ones((n, DIMS))
    return {
        "constant": np.stack([constant, constant], axis=1).astype(np.float32),
        "separable": np.stack([separable, separable], axis=1).astype(np.float32),
        "mixed": np.stack([constant, separable], axis=1).astype(np.float32),
    }


@pytest.fixture
def toy(tmp_path):
    record = _classification_record(tmp_path)
    return record, _features(record)


def test_score_for_is_perfect_on_separable_features_and_chance_on_identical_ones(toy):
    record, features = toy
    scores = widgets.ClassifierScores(record, features)
    assert scores.layers == ["constant", "separable", "mixed"]
    assert scores.score_for("separable", power=1, C=2) == 100.0
    assert scores.score_for("separable", power=2, C=0.2) == 100.0
    # identical test vectors get one identical prediction: one class of three right, the others wrong
    assert scores.score_for("constant") == pytest.approx(100 / 3)


def test_views_whole_reads_view_zero_only_and_all_uses_every_view(toy):
    record, features = toy
    assert widgets.ClassifierScores(record, features).score_for("mixed") == pytest.approx(100 / 3)
    assert widgets.ClassifierScores(record, features, use_views="all").score_for("mixed") == 100.0


def test_outcomes_are_memoised_and_record_their_setting(toy):
    record, features = toy
    scores = widgets.ClassifierScores(record, features)
    first = scores.outcome("separable", 2, 0.2)
    assert scores.outcome("separable", 2.0, 0.2) is first  # a second call trains nothing
    assert first.C == 0.2 and first.settings["power"] == 2.0 and first.settings["C_selection"] == "fixed"
    assert first.y_true.shape == (N_CLASSES * TEST_PER_CLASS,)
    assert scores.layer_scores(2, 0.2) == {"constant": pytest.approx(100 / 3), "separable": 100.0,
                                           "mixed": pytest.approx(100 / 3)}


def test_invalid_rows_are_left_out_of_training_and_testing(toy):
    record, features = toy
    broken = {layer: array.copy() for layer, array in features.items()}
    test_rows = np.flatnonzero(record.split == "test")
    for array in broken.values():
        array[test_rows[0]] = np.nan  # an unreadable test image, as FeatureSet stores it
    outcome = widgets.ClassifierScores(record, broken).outcome("separable")
    assert outcome.y_true.shape == (N_CLASSES * TEST_PER_CLASS - 1,)
    assert test_rows[0] not in outcome.test_indices and outcome.value == 100.0


def test_classifier_scores_reject_bad_input_with_clear_messages(toy, tmp_path):
    record, features = toy
    with pytest.raises(KeyError, match=r"No features for layer 'fc7'; this explorer holds \['constant'"):
        widgets.ClassifierScores(record, features).score_for("fc7")
    with pytest.raises(ValueError, match=r"layer 'separable' have shape \(29, 2, 6\); expected \(45, views, dims\)"):
        widgets.ClassifierScores(record, {"separable": features["separable"][:29]})
    with pytest.raises(TypeError, match="features must be a FeatureSet"):
        widgets.ClassifierScores(record, [features["separable"]])
    unlabelled = DatasetRecord(name="search_only", task="retrieval", root=tmp_path, paths=record.paths)
    with pytest.raises(ValueError, match="'search_only' has no labels"):
        widgets.ClassifierScores(unlabelled, features)


def test_classifier_explorer_shows_the_default_then_follows_its_controls(toy):
    record, features = toy
    explorer = widgets.classifier_explorer(record, features, layer="separable")
    assert explorer.layer.value == "separable" and explorer.power.value == 1.0 and explorer.C.value == 2.0
    assert [value for _, value in explorer.C.options] == sorted(set(classify.DEFAULT_CS) | {2.0})
    assert "mean class accuracy: 100.0%" in explorer.summary.value
    assert "15 test images of toy" in explorer.summary.value
    assert bytes(explorer.chart.value).startswith(PNG_MAGIC)
    explorer.layer.value = "constant"
    assert "mean class accuracy: 33.3%" in explorer.summary.value and "<code>constant</code>" in explorer.summary.value
    explorer.power.value = 2.0
    assert "L2 + signed power 2 (CNNaug-SVM)" in explorer.summary.value
    assert explorer.score_for("separable", 2.0, 2.0) == 100.0


def test_classifier_explorer_offers_a_power_or_C_outside_its_lists(toy):
    record, features = toy
    explorer = widgets.classifier_explorer(record, features, power=3, C=7.0)
    assert explorer.layer.value == "mixed"  # the last layer given is the default
    assert ("L2 + signed power 3", 3.0) in explorer.power.options and explorer.power.value == 3.0
    assert explorer.C.value == 7.0 and "C = 7" in explorer.summary.value


# --- retrieval explorer ------------------------------------------------------------------------------------------


@pytest.fixture
def searched(tmp_path):
    """Six database images (0-5) and a query image (6) outside the database; query 1 is database image 0.

    Query 0 (image 6): positives 2 and 4, ranked 2, 0, 4, ... -> AP = 1/2 (1 + 1)/2 + 1/2 (1/2 + 2/3)/2 = 19/24.
    Query 1 (image 0, searched, not its own positive, so junk): positive 1, ranked 0, 3, 1, ... -> after dropping
    the junk, the positive is second: AP = 1 (0 + 1/2)/2 = 1/4.
    """
    paths = []
    for i in range(7):
        path = tmp_path / f"photo_{i}.png"
        Image.new("RGB", (24, 16), (30 * i, 100, 200 - 20 * i)).save(path)
        paths.append(path)
    record = DatasetRecord(
        name="toy_search", task="retrieval", root=tmp_path, paths=paths, split=np.array(["db"] * 6 + ["query"]),
        queries=[Query(index=6, positives=[2, 4], name="outside"), Query(index=0, positives=[1], name="inside")],
        database=np.arange(6),
    )
    ranks = np.array([[2, 0, 4, 1, 3, 5], [0, 3, 1, 2, 4, 5]])
    distances = np.tile(np.arange(6, dtype=float) / 10, (2, 1))
    distances = np.take_along_axis(distances, np.argsort(ranks, axis=1), axis=1)  # distance of column = its rank / 10
    scores = evaluate_retrieval(record, ranks=ranks)
    outcome = RetrievalOutcome(**{f.name: getattr(scores, f.name) for f in fields(scores)}, ranks=ranks,
                               distances=distances, layer="toy", seconds={}, dataset=record.name, backbone="none",
                               method="global", setting="toy", db_index=np.arange(6), query_index=np.array([6, 0]))
    return record, outcome


def test_ranked_results_mark_relevant_junk_and_wrong_like_the_evaluation(searched):
    record, outcome = searched
    assert outcome.ap == pytest.approx([19 / 24, 1 / 4])
    first = widgets.ranked_results(record, outcome, 0, top=3)
    assert [(i.rank, i.index, i.status) for i in first] == [(1, 2, "relevant"), (2, 0, "wrong"), (3, 4, "relevant")]
    assert [i.distance for i in first] == pytest.approx([0.0, 0.1, 0.2])
    assert first[0].path == record.paths[2]
    second = widgets.ranked_results(record, outcome, 1, top=3)
    assert [(i.index, i.status) for i in second] == [(0, "junk"), (3, "wrong"), (1, "relevant")]
    assert len(widgets.ranked_results(record, outcome, 1, top=50)) == 6
    assert widgets.ranked_results(record, replace(outcome, distances=None), 0, top=1)[0].distance is None


def test_retrieval_explorer_shows_the_default_query_then_follows_the_dropdown(searched):
    record, outcome = searched
    explorer = widgets.retrieval_explorer(record, outcome, top=3)
    assert [label for label, _ in explorer.query.options] == ["0: outside (AP 0.79)", "1: inside (AP 0.25)"]
    assert bytes(explorer.gallery.value).startswith(PNG_MAGIC)
    assert "AP of this query: 0.792" in explorer.table.value and explorer.table.value.count("relevant") == 2
    first_gallery = explorer.gallery.value
    explorer.query.value = 1
    assert "AP of this query: 0.250" in explorer.table.value and "junk" in explorer.table.value
    assert "photo_3.png" in explorer.table.value and explorer.gallery.value != first_gallery
    assert [i.index for i in explorer.ranked_for(1, 2)] == [0, 3]


def test_retrieval_explorer_rejects_outcomes_of_another_record(searched):
    record, outcome = searched
    scores_only = evaluate_retrieval(record, ranks=outcome.ranks)
    with pytest.raises(TypeError, match="Got a RetrievalScores without rankings; pass the RetrievalOutcome"):
        widgets.retrieval_explorer(record, scores_only)
    with pytest.raises(ValueError, match=r"outcome.ranks has shape \(1, 6\), but 'toy_search' has 2 queries"):
        widgets.ranked_results(record, replace(outcome, ranks=outcome.ranks[:1]), 0)
    with pytest.raises(IndexError, match="Query 5 does not exist: 'toy_search' has queries 0 to 1"):
        widgets.retrieval_explorer(record, outcome, query=5)
    with pytest.raises(ValueError, match="top must be at least 1; got 0"):
        widgets.ranked_results(record, outcome, 0, top=0)


# --- retrieval explorer on a folder of photos -------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, chelsea, coffee):
    """``album/<photo>/{whole,mirror}.jpg`` for the cat and the coffee cup, and a crop of the cat outside the album."""
    root = tmp_path_factory.mktemp("photos")
    for name, photo in (("cat", chelsea), ("cup", coffee)):
        small = photo.resize((photo.width // 4, photo.height // 4))
        (root / "album" / name).mkdir(parents=True)
        small.save(root / "album" / name / "whole.jpg")
        small.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "album" / name / "mirror.jpg")
    outside = root / "cat_face.jpg"
    chelsea.crop((80, 20, 330, 270)).resize((64, 64)).save(outside)
    return root / "album", outside


def test_folder_explorer_offers_outside_queries_first_then_every_photo(photo_folder):
    album, outside = photo_folder
    explorer = widgets.folder_explorer(album, queries=[outside], top=2, engine="torch", progress=False)
    assert [label for label, _ in explorer.query.options] == [
        "outside: cat_face.jpg", "cat/mirror.jpg", "cat/whole.jpg", "cup/mirror.jpg", "cup/whole.jpg"]
    assert explorer.method.value == "global" and len(explorer.index) == 4
    assert bytes(explorer.gallery.value).startswith(PNG_MAGIC)
    first = explorer.matches_for(0)
    assert {m.path.relative_to(album).as_posix() for m in first.matches} == {"cat/whole.jpg", "cat/mirror.jpg"}
    assert "cat_face.jpg" in explorer.table.value and explorer.table.value.count("<tr>") == 1 + 2
    shown = explorer.gallery.value
    explorer.query.value = 4  # cup/whole.jpg: its mirror image first, never itself
    assert explorer.gallery.value != shown
    cup = explorer.matches_for(4)
    assert cup.matches[0].path == album / "cup" / "mirror.jpg"
    assert all(m.path != album / "cup" / "whole.jpg" for m in cup.matches)
    assert "<td>cup/mirror.jpg</td>" in explorer.table.value
    assert explorer.matches_for(4) is cup  # remembered, not searched again


def test_folder_explorer_rejects_bad_choices_with_clear_messages(photo_folder, tmp_path):
    album, _ = photo_folder
    with pytest.raises(ValueError, match=r"Unknown search method 'fast'; choose one of \('global', 'spatial', 'jitter'\)"):
        widgets.folder_explorer(album, method="fast")
    with pytest.raises(IndexError, match=r"Query 9 does not exist: the explorer offers queries 0 to 3 \(0 given, then "
                                         r"the 4 indexed photos\)"):
        widgets.folder_explorer(album, query=9, engine="torch", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        widgets.folder_explorer(tmp_path / "empty")


def test_folder_explorer_takes_an_index_already_built(photo_folder):
    from course_utils import photo_search

    album, _ = photo_folder
    index = photo_search.build_index(album, engine="torch", progress=False)
    explorer = widgets.folder_explorer(index, top=1, progress=False)
    assert explorer.index is index and [label for label, _ in explorer.query.options][0] == "cat/mirror.jpg"
    assert explorer.matches_for(0).matches[0].path == album / "cat" / "whole.jpg"
    with pytest.raises(TypeError, match=r"folder is an index already built; \['engine'\] apply only to a folder"):
        widgets.folder_explorer(index, engine="torch")


def test_figure_png_gives_png_bytes():
    figure, axis = plt.subplots(figsize=(2, 1))
    axis.plot([0, 1], [1, 0])
    png = widgets.figure_png(figure)
    assert png.startswith(PNG_MAGIC)
    from io import BytesIO

    assert Image.open(BytesIO(png)).size == (160, 80)  # 2 x 1 inches at 80 dpi
