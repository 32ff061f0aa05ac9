"""course_utils.notebook: the helpers that keep notebook cells short, checked against hand-computed values."""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from course_utils import backbones, notebook

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _restore_matplotlib():
    """setup() styles matplotlib globally; keep that (and every figure) out of the other tests."""
    with matplotlib.rc_context():
        yield
    plt.close("all")


@pytest.fixture
def course_env(tmp_path, monkeypatch):
    cache, shared = tmp_path / "cache", tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    monkeypatch.setenv("COURSE_SHARED_DATA", str(shared))
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    return SimpleNamespace(cache=cache, shared=shared)


# --- setup -------------------------------------------------------------------------------------------------------


def test_setup_prints_profile_backbone_device_and_folders(course_env, capsys):
    info = notebook.setup(seed=7)
    printed = capsys.readouterr().out
    assert info.profile == "demo" and info.backbone == "efficientnet_lite0" and info.device == "cpu"
    assert info.cache_dir == course_env.cache and course_env.cache.is_dir()
    assert info.shared_data == course_env.shared
    lines = printed.splitlines()
    assert lines[0].startswith("profile     demo: offline")
    assert "backbone    efficientnet_lite0" in lines
    assert any(line.startswith("device      cpu (") and "CPU cores usable" in line for line in lines)
    assert "seed        7" in lines
    assert f"cache       {course_env.cache}" in lines
    assert f"shared data {course_env.shared} (real benchmark subsets are used)" in lines


def test_setup_seeds_numpy_and_torch_and_styles_plots(course_env):
    notebook.setup(seed=7)
    assert np.random.rand() == np.random.RandomState(7).rand()
    assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(7)))
    assert matplotlib.rcParams["image.interpolation"] == "nearest"
    assert list(matplotlib.rcParams["figure.figsize"]) == [8.0, 4.0]


def test_setup_says_when_shared_data_is_absent(course_env, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "no-such-folder"))
    info = notebook.setup()
    assert info.shared_data is None
    assert "shared data absent (only the embedded demo sets; set COURSE_SHARED_DATA" in capsys.readouterr().out


def test_setup_takes_the_profiles_backbone_without_loading_it(course_env, capsys):
    info = notebook.setup(profile="full")
    assert (info.profile, info.backbone) == ("full", "resnet50")
    assert "backbone    resnet50" in capsys.readouterr().out


def test_setup_rejects_unknown_names_before_any_slow_work(course_env):
    with pytest.raises(KeyError, match="Unknown backbone 'resnet5'. Available: .*efficientnet_lite0"):
        notebook.setup(backbone="resnet5")
    with pytest.raises(ValueError, match=r"Unknown profile 'quick'; choose one of \['demo', 'full'\]"):
        notebook.setup(profile="quick")


# --- show_images -------------------------------------------------------------------------------------------------


def test_show_images_draws_one_axis_per_image_in_a_grid():
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    grey = np.arange(12, dtype=np.float32).reshape(3, 4)
    images = [rgb, grey, Image.new("RGB", (6, 2), (0, 255, 0)), rgb, rgb]
    figure = notebook.show_images(images, titles=list("abcde"), ncols=2)
    assert len(figure.axes) == 5
    assert figure.axes[4].get_subplotspec().get_geometry() == (3, 2, 4, 4)  # 3 rows of 2, fifth cell
    assert [axis.get_title() for axis in figure.axes] == list("abcde")
    np.testing.assert_array_equal(figure.axes[1].images[0].get_array(), grey)
    assert figure.axes[1].images[0].get_cmap().name == "gray"
    assert figure.axes[2].images[0].get_array().shape == (2, 6, 3)
    assert not figure.axes[0].axison


def test_show_images_caps_columns_at_the_number_of_images():
    figure = notebook.show_images([np.zeros((2, 2))] * 3)
    assert figure.axes[0].get_subplotspec().get_geometry()[:2] == (1, 3)


def test_show_images_rejects_bad_input_clearly():
    with pytest.raises(ValueError, match="at least one image; it was given none"):
        notebook.show_images([])
    with pytest.raises(ValueError, match="got 2 images but 1 titles"):
        notebook.show_images([np.zeros((2, 2))] * 2, titles=["one"])
    with pytest.raises(ValueError, match=r"Image 1 has shape \(3, 8, 8\).*transpose\(1, 2, 0\)"):
        notebook.show_images([np.zeros((8, 8)), np.zeros((3, 8, 8))])


# --- filters, photos, network input ------------------------------------------------------------------------------


def test_first_conv_filters_takes_the_first_colour_convolution_and_scales_each_filter():
    grey_conv, colour_conv = nn.Conv2d(1, 4, 1), nn.Conv2d(3, 2, 2)
    with torch.no_grad():
        colour_conv.weight[0] = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2) - 4.0  # -4 .. 7
        colour_conv.weight[1] = 0.25  # a constant filter has no pattern: drawn mid-grey
    filters = notebook.first_conv_filters(nn.Sequential(grey_conv, colour_conv))
    assert filters.shape == (2, 2, 2, 3) and filters.dtype == np.float32
    # filter 0, channel c, row i, column j held c*4 + i*2 + j - 4; scaled by (w - (-4)) / 11
    expected = (np.arange(12).reshape(3, 2, 2).transpose(1, 2, 0)) / 11.0
    np.testing.assert_allclose(filters[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(filters[1], np.full((2, 2, 3), 0.5, dtype=np.float32))


def test_first_conv_filters_names_what_to_pass_instead():
    with pytest.raises(ValueError, match="Linear has no Conv2d with 3 input channels; pass the network itself"):
        notebook.first_conv_filters(nn.Linear(3, 3))


def test_sample_photos_are_scikit_images_bundled_rgb_photographs():
    photos = notebook.sample_photos(["chelsea", "coffee"])
    assert list(photos) == ["chelsea", "coffee"]
    assert photos["chelsea"].size == (451, 300) and photos["chelsea"].mode == "RGB"
    assert photos["coffee"].size == (600, 400)
    with pytest.raises(ValueError, match=r"Unknown sample photo\(s\) \['dog'\]; choose from"):
        notebook.sample_photos(["chelsea", "dog"])


def test_network_view_undoes_the_normalisation():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    net = SimpleNamespace(transform=backbones.make_transform(32, mean, std), mean=mean, std=std)
    pixels = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    view = notebook.network_view(net, Image.fromarray(pixels))
    assert view.shape == (32, 32, 3)
    np.testing.assert_allclose(view * 255, pixels, atol=1e-3)


def test_network_view_squashes_to_the_input_square():
    half = (0.5, 0.5, 0.5)
    net = SimpleNamespace(transform=backbones.make_transform(16, half, half), mean=half, std=half)
    view = notebook.network_view(net, Image.new("RGB", (40, 30), (255, 0, 0)))
    assert view.shape == (16, 16, 3)
    np.testing.assert_allclose(view, np.broadcast_to([1.0, 0.0, 0.0], (16, 16, 3)), atol=1e-6)


def test_format_predictions_aligns_probability_name_and_index():
    text = notebook.format_predictions([(285, "Egyptian cat", 0.7931), (282, "tiger cat", 0.0878)])
    assert text == " 79.3%  Egyptian cat  [285]\n  8.8%  tiger cat  [282]"


# --- the paper's claim and the course map ------------------------------------------------------------------------


def test_paper_claim_reads_tables_1_to_7():
    rows = {row.dataset: row for row in notebook.paper_claim()}
    assert len(rows) == 11
    voc = rows["voc2007"]
    assert (voc.prior_method, voc.prior, voc.cnn, voc.cnn_aug) == ("AGS", 71.1, 73.9, 77.2)
    uiuc = rows["uiuc_apascal"]  # Table 5's mAUC column, not the within-categories AUC
    assert (uiuc.prior, uiuc.cnn, uiuc.cnn_aug) == (73.7, 89.0, 91.5)
    oxford = rows["oxford5k"]
    assert (oxford.prior_method, oxford.prior, oxford.cnn_method, oxford.cnn, oxford.cnn_aug_method, oxford.cnn_aug) == (
        "ASMK+MA", 81.7, "CNN", 32.2, "CNNaug-ss", 68.0,
    )
    # docs/paper.md, Table 7: CNNaug-ss loses only on Oxford5k (to ASMK) and Sculptures6k (to BoB)
    assert sorted(d for d, r in rows.items() if r.cnn_aug <= r.prior) == ["oxford5k", "sculptures6k"]


def test_plot_paper_claim_draws_three_bars_per_benchmark_with_the_tables_values():
    figure = notebook.plot_paper_claim()
    rows = notebook.paper_claim()
    (axis,) = figure.axes
    heights = [[bar.get_height() for bar in container] for container in axis.containers]
    assert heights == [[r.prior for r in rows], [r.cnn for r in rows], [r.cnn_aug for r in rows]]
    assert [label.get_text() for label in axis.get_xticklabels()] == [r.task for r in rows]


def test_draw_data_flow_names_every_module_and_draws_every_arrow():
    figure = notebook.draw_data_flow()
    (axis,) = figure.axes
    texts = {text.get_text() for text in axis.texts}
    for stage, module, notebooks in (*notebook.DATA_FLOW, notebook.RETRIEVAL_BRANCH):
        assert {stage, module, f"nb {notebooks}"} <= texts
    arrows = [text for text in axis.texts if getattr(text, "arrow_patch", None) is not None]
    assert len(arrows) == len(notebook.DATA_FLOW) - 1 + 2  # the main line, then into and out of retrieval


# --- the prediction explorer -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained_lite0():
    """The real network with random weights: the explorer's plumbing does not need ImageNet's, and it builds fast."""
    return backbones.load("efficientnet_lite0", pretrained=False)


def test_prediction_explorer_shows_the_picked_photos_predictions(untrained_lite0):
    photos = notebook.sample_photos(["chelsea", "coffee"])
    expected = untrained_lite0.predict(list(photos.values()), topk=3)
    explorer = notebook.prediction_explorer(untrained_lite0, photos, topk=3)
    assert explorer.dropdown.options == ("chelsea", "coffee") and explorer.dropdown.value == "chelsea"
    assert explorer.table.value == f"<pre>{html.escape(notebook.format_predictions(expected[0]))}</pre>"
    first_photo = bytes(explorer.photo.value)
    assert first_photo.startswith(PNG_MAGIC)
    explorer.dropdown.value = "coffee"
    assert explorer.table.value == f"<pre>{html.escape(notebook.format_predictions(expected[1]))}</pre>"
    assert bytes(explorer.photo.value).startswith(PNG_MAGIC) and bytes(explorer.photo.value) != first_photo
    assert explorer.table.value.count("\n") == 2  # topk=3 lines


def test_prediction_explorer_needs_a_photo(untrained_lite0):
    with pytest.raises(ValueError, match="needs at least one photo"):
        notebook.prediction_explorer(untrained_lite0, {})


# --- notebooks 06-08: datasets subsets, boxes on photos, confusions, report sections -----------------------------


def _classes_record(tmp_path=None):  # noqa: ANN001
    """Three classes a, b, c; per class 2 train, 1 val and 3 test images, in interleaved order."""
    from course_utils.datasets.base import DatasetRecord

    labels = np.array([0, 1, 2] * 6)
    split = np.array(["train"] * 6 + ["val"] * 3 + ["test"] * 9)
    root = tmp_path or Path("/nonexistent")
    return DatasetRecord("toy", "multiclass", root, [root / f"im{i:02d}.png" for i in range(18)], labels=labels,
                         class_names=["a", "b", "c"], split=split, protocol="toy protocol")


def test_class_subset_keeps_the_chosen_classes_relabelled_in_the_order_given():
    record = _classes_record()
    subset = notebook.class_subset(record, ["c", 0], test_per_class=2)
    # class c (label 2): train 2, 5; val 8; test 11, 14 (17 dropped by the cap); class a (0): 0, 3, 6, 9, 12
    assert [p.name for p in subset.paths] == [f"im{i:02d}.png" for i in (0, 2, 3, 5, 6, 8, 9, 11, 12, 14)]
    assert subset.labels.tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert subset.class_names == ["c", "a"]
    assert subset.split.tolist() == ["train"] * 4 + ["val"] * 2 + ["test"] * 4
    assert subset.protocol == "toy protocol | subset: 2 classes, at most 2 test images per class"
    assert len(notebook.class_subset(record, [1]).indices("test")) == 3  # no cap: every test image of class b


def test_class_subset_rejects_unknown_repeated_or_multilabel_classes_clearly():
    record = _classes_record()
    with pytest.raises(ValueError, match=r"'toy' has no class 'd'; its classes start \['a', 'b', 'c'\]"):
        notebook.class_subset(record, ["a", "d"])
    with pytest.raises(ValueError, match="Class id 3 is outside 0..2"):
        notebook.class_subset(record, [3])
    with pytest.raises(ValueError, match="needs distinct classes"):
        notebook.class_subset(record, ["a", 0])
    with pytest.raises(ValueError, match="test_per_class must be at least 1"):
        notebook.class_subset(record, ["a"], test_per_class=0)
    record.labels = np.zeros((18, 2), dtype=int)
    with pytest.raises(ValueError, match="needs a single-label dataset"):
        notebook.class_subset(record, ["a"])


def _retrieval_record():
    """Twelve images in groups of four (UKBench style); every image queries all; image 1 is junk for query 0."""
    from course_utils.datasets.base import DatasetRecord, Query

    queries = [Query(i, positives=list(range(i - i % 4, i - i % 4 + 4)), junk=[1] if i == 0 else [], name=f"q{i}")
               for i in range(12)]
    return DatasetRecord("groups", "retrieval", Path("/r"), [Path(f"/r/{i}.jpg") for i in range(12)],
                         queries=queries, database=np.arange(12), metric="N-S score", protocol="groups of 4")


def test_retrieval_subset_keeps_the_first_images_and_cuts_the_ground_truth_to_them():
    subset = notebook.retrieval_subset(_retrieval_record(), 6)
    assert [p.name for p in subset.paths] == [f"{i}.jpg" for i in range(6)]
    assert [q.index for q in subset.queries] == [0, 1, 2, 3, 4, 5]
    assert subset.queries[4].positives == [4, 5] and subset.queries[0].positives == [0, 1, 2, 3]
    assert subset.queries[0].junk == [1] and subset.queries[0].name == "q0"
    assert subset.database.tolist() == [0, 1, 2, 3, 4, 5]
    assert subset.metric == "N-S score" and subset.protocol == "groups of 4 | subset: first 6 images, 6 queries"
    assert len(_retrieval_record().queries[4].positives) == 4, "the original record must stay untouched"


def test_retrieval_subset_rejects_bad_sizes_and_other_tasks():
    with pytest.raises(ValueError, match="n_images must be in 1..12 for 'groups'; got 13"):
        notebook.retrieval_subset(_retrieval_record(), 13)
    with pytest.raises(ValueError, match="needs a retrieval dataset; 'toy' is 'multiclass'"):
        notebook.retrieval_subset(_classes_record(), 2)


def _rectangles(axis):  # noqa: ANN001
    from matplotlib.patches import Rectangle

    return [patch for patch in axis.patches if isinstance(patch, Rectangle)]


def test_draw_boxes_draws_each_named_box_at_its_pixels():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    figure = notebook.draw_boxes(image, {"box": (10, 20, 60, 90), "enlarged": (0, 5, 85, 100)})
    (axis,) = figure.axes
    rectangles = _rectangles(axis)
    assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in rectangles] == [
        (10, 20, 50, 70), (0, 5, 85, 95)]
    assert [text.get_text() for text in axis.texts] == ["box", "enlarged"]
    assert rectangles[0].get_edgecolor() != rectangles[1].get_edgecolor()


def test_draw_patch_pyramid_shows_each_level_and_the_running_total():
    from course_utils.retrieval import patch_boxes

    image = Image.new("RGB", (120, 90))
    figure = notebook.draw_patch_pyramid(image, levels=4)
    assert [axis.get_title() for axis in figure.axes] == [
        "level 1: 1 patch (total 1)", "level 2: 4 patches (total 5)", "level 3: 9 patches (total 14)",
        "level 4: 16 patches (total 30)"]
    def corners(r):  # noqa: ANN001, ANN202
        return round(r.get_x()), round(r.get_y()), round(r.get_x() + r.get_width()), round(r.get_y() + r.get_height())

    outlines = [corners(r) for axis in figure.axes for r in _rectangles(axis) if not r.get_fill()]
    assert outlines == patch_boxes(120, 90, 4)
    assert outlines[1] == (0, 0, 80, 60)  # level 2: side 2/3 of each axis, 50% overlap
    shaded = [corners(r) for axis in figure.axes for r in _rectangles(axis) if r.get_fill()]
    assert shaded == [(0, 0, 120, 90), (0, 0, 80, 60), (0, 0, 60, 45), (0, 0, 48, 36)]  # each level's first patch


def test_show_confused_pairs_puts_each_mistake_beside_the_class_it_was_taken_for(tmp_path):
    record = _classes_record(tmp_path)
    for i, path in enumerate(record.paths):  # the red channel encodes the image number
        Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(path)
    test = record.indices("test")  # 9..17, labels 0 1 2 0 1 2 0 1 2
    y_true = record.labels[test]
    y_pred = np.array([1, 1, 2, 1, 1, 0, 1, 1, 0])  # a->b three times (9, 12, 15), c->a twice (14, 17)
    outcome = SimpleNamespace(y_true=y_true, y_pred=y_pred, test_indices=test)
    figure = notebook.show_confused_pairs(record, outcome, top=2)
    assert [axis.get_title() for axis in figure.axes] == [
        "a\ntaken for b (3x)", "a training\nb", "c\ntaken for a (2x)", "a training\na"]
    shown = [int(axis.images[0].get_array()[0, 0, 0]) // 10 for axis in figure.axes]
    assert shown == [9, 1, 14, 0]  # first mistaken test image, then the first training image of the other class


def test_show_confused_pairs_without_mistakes_or_for_multilabel_outcomes():
    record = _classes_record()
    labels = record.labels[record.indices("test")]
    figure = notebook.show_confused_pairs(record, SimpleNamespace(y_true=labels, y_pred=labels, test_indices=None))
    assert figure.axes[0].texts[0].get_text() == "no confusions: every test image is classified correctly"
    with pytest.raises(ValueError, match="needs a single-label outcome"):
        notebook.show_confused_pairs(record, SimpleNamespace(y_true=labels, y_pred=None, test_indices=None))


REPORT = "# Title\n\nintro\n\n## Claims\n\n| a | b |\n|---|---|\n\nA note\non two lines.\n\n![plot](p.png)\n\n" \
         "### Detail\n\ntext\n\n## Next\nend"


def test_markdown_section_runs_to_the_next_heading_of_its_level_or_a_number_of_blocks():
    assert notebook.markdown_section(REPORT, "## Claims") == (
        "## Claims\n\n| a | b |\n|---|---|\n\nA note\non two lines.\n\n![plot](p.png)\n\n### Detail\n\ntext")
    assert notebook.markdown_section(REPORT, "## Claims", blocks=2) == (
        "## Claims\n\n| a | b |\n|---|---|\n\nA note\non two lines.")
    assert notebook.markdown_section(REPORT, "## Next") == "## Next\nend"
    assert notebook.markdown_section(REPORT, "# Title", blocks=1) == "# Title\n\nintro"


def test_markdown_section_names_the_headings_it_has():
    with pytest.raises(ValueError, match=r"No heading '## Missing' in the document; its headings are \['# Title', "):
        notebook.markdown_section(REPORT, "## Missing")
    with pytest.raises(ValueError, match="heading must start with '#'"):
        notebook.markdown_section(REPORT, "Claims")
    with pytest.raises(ValueError, match="blocks must be at least 1"):
        notebook.markdown_section(REPORT, "## Claims", blocks=0)


# --- notebook 03: the views on a photo, few training images ------------------------------------------------------


def test_rotated_to_original_finds_the_photo_pixel_that_pil_rotated_there():
    # a smooth gradient: red grows with x, green with y, so a pixel's colour says where it came from
    x, y = np.meshgrid(np.arange(200), np.arange(150))
    pixels = np.stack([x * 255 / 199, y * 255 / 149, np.full_like(x, 128.0)], axis=-1).round().astype(np.uint8)
    rotated = np.asarray(Image.fromarray(pixels).rotate(10, resample=Image.Resampling.BILINEAR))
    for px, py in ((140, 105), (60, 40), (150, 30)):
        ((sx, sy),) = notebook.rotated_to_original(np.array([[px + 0.5, py + 0.5]]), 200, 150, 10)
        expected = (sx - 0.5) * 255 / 199, (sy - 0.5) * 255 / 149  # pixel centres sit at +0.5
        assert rotated[py, px, :2] == pytest.approx(expected, abs=3)
    # the wrong direction would land ~10 pixels away on this offset: the check above can tell
    ((wx, wy),) = notebook.rotated_to_original(np.array([[140.5, 105.5]]), 200, 150, -10)
    assert abs(rotated[105, 140, 1] - (wy - 0.5) * 255 / 149) > 10


def test_view_outlines_are_the_papers_windows_on_the_photo():
    outlines = notebook.view_outlines("paper16", 90, 60)
    assert list(outlines) == ["whole", "crop_tl", "crop_tr", "crop_bl", "crop_br", "crop_c", "rot+10", "rot-10"]
    np.testing.assert_array_equal(outlines["whole"], [[0, 0], [90, 0], [90, 60], [0, 60]])
    np.testing.assert_array_equal(outlines["crop_tl"], [[0, 0], [60, 0], [60, 40], [0, 40]])  # 2/3 x 2/3
    np.testing.assert_array_equal(outlines["crop_br"], [[30, 20], [90, 20], [90, 60], [30, 60]])
    for name, sign in (("rot+10", 1), ("rot-10", -1)):  # y points down: +10 (counter-clockwise) tilts this way
        corners = outlines[name]
        top_edge = corners[1] - corners[0]
        assert np.degrees(np.arctan2(top_edge[1], top_edge[0])) == pytest.approx(sign * 10)
        assert corners.min() >= 0 and (corners[:, 0] <= 90).all() and (corners[:, 1] <= 60).all()


def test_plot_view_boxes_draws_one_outline_per_unmirrored_view(chelsea):
    figure = notebook.plot_view_boxes(chelsea)
    (axis,) = figure.axes
    assert len(axis.patches) == 8
    assert [text.get_text() for text in axis.get_legend().get_texts()] == list(notebook.view_outlines(
        "paper16", chelsea.width, chelsea.height))

    class Boxless:  # a valid view spec that cannot say where its views are
        name, view_names, n_views = "boxless", ["whole"], 1

        def __call__(self, image):
            return [image]

    with pytest.raises(TypeError, match="has no boxes"):
        notebook.view_outlines(Boxless(), 9, 9)


def _few_shot_record(tmp_path):
    from course_utils.datasets.base import DatasetRecord

    labels = np.array([0] * 5 + [1] * 5 + [2] * 5 + [0, 0, 1, 1, 2, 2])
    split = np.array(["train"] * 15 + ["test"] * 6)
    return DatasetRecord(name="toy", task="multiclass", root=tmp_path,
                         paths=[tmp_path / f"{i}.jpg" for i in range(21)], labels=labels, split=split)


def test_few_shot_indices_keep_per_class_training_images_and_every_test_image(tmp_path):
    record = _few_shot_record(tmp_path)
    chosen = notebook.few_shot_indices(record, 2, seed=3)
    assert np.all(np.diff(chosen) > 0)
    train = chosen[record.split[chosen] == "train"]
    assert np.bincount(record.labels[train]).tolist() == [2, 2, 2]
    assert chosen[record.split[chosen] == "test"].tolist() == list(range(15, 21))
    assert np.array_equal(notebook.few_shot_indices(record, 2, seed=3), chosen)
    assert len({tuple(notebook.few_shot_indices(record, 2, seed=s)) for s in range(5)}) > 1
    assert notebook.few_shot_indices(record, 5).tolist() == list(range(21))


def test_few_shot_indices_explain_impossible_requests(tmp_path):
    record = _few_shot_record(tmp_path)
    with pytest.raises(ValueError, match=r"class 0 has 5 training images, fewer than per_class=6; ask for at most 5"):
        notebook.few_shot_indices(record, 6)
    with pytest.raises(ValueError, match="per_class must be at least 1; got 0"):
        notebook.few_shot_indices(record, 0)
    record.task = "attributes"
    with pytest.raises(ValueError, match="needs a single-label dataset; 'toy' is 'attributes'"):
        notebook.few_shot_indices(record, 1)


# --- notebook 04: features of in-memory images -------------------------------------------------------------------


def test_image_features_match_the_cached_extraction_of_the_same_pixels(untrained_lite0, tmp_path):
    from course_utils import features

    photos = [notebook.sample_photos(["coffee"])["coffee"], Image.fromarray(np.full((40, 60, 3), 90, np.uint8))]
    paths = []
    for i, photo in enumerate(photos):
        paths.append(tmp_path / f"photo_{i}.png")  # PNG is lossless: the files hold exactly these pixels
        photo.save(paths[-1])
    got = notebook.image_features(untrained_lite0, photos)
    assert got.shape == (2, untrained_lite0.layers[untrained_lite0.default_layer])
    reference = features.extract(paths, untrained_lite0, views="whole", engine="torch", cache=False, progress=False)
    np.testing.assert_allclose(got, reference[untrained_lite0.default_layer][:, 0], rtol=1e-4, atol=1e-5)
    assert notebook.image_features(untrained_lite0, photos[:1], layer="stage2").shape == (1, 24)
    with pytest.raises(ValueError, match="needs at least one image"):
        notebook.image_features(untrained_lite0, [])


# --- viz additions: feature maps, C curves, precision-recall -----------------------------------------------------


def test_embed_2d_pca_gives_the_principal_axes():
    from course_utils import viz

    X = np.array([[-2.0, 0, 0], [0, 0, 0], [2, 0, 0], [0, 1, 0]])  # variance 8/3 along x, 1/4 along y, 0 on z
    points = viz.embed_2d(X, "pca")
    np.testing.assert_allclose(np.abs(points), np.abs([[-2, -0.25], [0, -0.25], [2, -0.25], [0, 0.75]]), atol=1e-12)
    tsne = viz.embed_2d(np.random.default_rng(0).standard_normal((12, 5)), "tsne", seed=1)
    assert tsne.shape == (12, 2) and np.allclose(tsne, viz.embed_2d(
        np.random.default_rng(0).standard_normal((12, 5)), "tsne", seed=1))
    with pytest.raises(ValueError, match=r"at least 3 images; got shape \(4, 1, 3\)"):
        viz.embed_2d(X[:, None, :])
    with pytest.raises(ValueError, match="method must be 'pca' or 'tsne'; got 'umap'"):
        viz.embed_2d(X, "umap")


def test_plot_feature_scatter_draws_each_class_in_each_panel():
    from course_utils import viz

    rng = np.random.default_rng(0)
    labels = np.array([0] * 4 + [1] * 6)
    figure = viz.plot_feature_scatter({"shallow": rng.random((10, 4)), "deep": rng.random((10, 8))}, labels,
                                      ["cat", "dog"])
    assert [axis.get_title() for axis in figure.axes] == ["shallow (PCA)", "deep (PCA)"]
    for axis in figure.axes:
        assert [len(collection.get_offsets()) for collection in axis.collections] == [4, 6]
    assert [text.get_text() for text in figure.axes[-1].get_legend().get_texts()] == ["cat", "dog"]


def test_plot_cv_scores_draws_fold_means_and_marks_the_chosen_and_paper_C():
    from course_utils import viz
    from course_utils.classify import CSelection

    selection = CSelection(C=2.0, Cs=(0.2, 2.0, 20.0), fold_scores=np.array([[0.5, 0.6], [0.8, 0.9], [0.7, 0.7]]))
    (axis,) = viz.plot_cv_scores(selection, reference_C=0.2).axes
    lines = {line.get_label(): line for line in axis.get_lines()}
    np.testing.assert_allclose(lines["mean over folds"].get_ydata(), [55, 85, 70])
    assert lines["chosen C = 2"].get_xdata()[0] == 2.0 and lines["paper C = 0.2"].get_xdata()[0] == 0.2
    assert axis.get_xscale() == "log"


def test_plot_precision_recall_shows_both_aps_of_the_protocols_worked_example():
    from course_utils import viz

    scores, labels = np.array([6, 5, 4, 3, 2, 1.0]), np.array([1, 0, 1, 0, 0, 1])  # P N P N N P (docs/protocols.md)
    (axis,) = viz.plot_precision_recall(scores, labels).axes
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert legend == ["precision at each rank (area AP = 0.722)", "11-point interpolation (VOC07 AP = 0.727)"]
    interpolated = axis.get_lines()[1].get_ydata()
    np.testing.assert_allclose(interpolated, [1] * 4 + [2 / 3] * 3 + [1 / 2] * 4)
    assert np.mean(interpolated) == pytest.approx(8 / 11)
    with pytest.raises(ValueError, match="no positive item"):
        viz.plot_precision_recall(scores, np.zeros(6, int))


def _result(dataset, method, value, metric="mean class accuracy", backbone="net"):  # noqa: ANN001, ANN202
    from course_utils.report import ResultRecord

    return ResultRecord(dataset, "task", method, backbone, metric, value)


def test_claim_gains_lists_the_papers_gains_then_ours_in_points():
    records = [
        _result("demo_classes", "CNN-SVM", 90.0), _result("demo_classes", "CNNaug-SVM", 95.5),
        _result("demo_classes", "CNNaug-SVM power=2 (paper's exponent)", 99.0),  # an ablation: not a claim row
        _result("ukb", "CNN", 3.5, "N-S score (0-4)"), _result("ukb", "CNN-ss (16-view jitter)", 3.6, "N-S score (0-4)"),
        _result("half", "CNN", 50.0, "mAP"),  # no improved row: no gain
    ]
    gains = {(g.claim.split(" (")[0], g.source, g.dataset): g.gain for g in notebook.claim_gains(records)}
    assert gains[("16 jittered views", "paper", "flowers102")] == pytest.approx(86.8 - 74.7)  # Table 4
    assert gains[("16 jittered views", "paper", "h3d")] == pytest.approx(73.0 - 70.8)  # Table 6
    assert gains[("16 jittered views", "paper", "uiuc_apascal (mAUC)")] == pytest.approx(91.5 - 89.0)  # Table 5
    assert gains[("spatial search", "paper", "oxford5k")] == pytest.approx(55.6 - 32.2)  # Table 7
    assert gains[("search + PCA-whitening + power α = 2", "paper", "ukbench")] == pytest.approx(91.1 - 76.0)
    assert gains[("16 jittered views", "net", "demo_classes")] == pytest.approx(5.5)
    assert gains[("spatial search", "net", "ukb")] == pytest.approx(2.5)  # 0.1 N-S x 25
    assert not any(dataset == "half" for _, _, dataset in gains)
    assert sum(source == "paper" for _, source, _ in gains) == 8 + 5 + 5  # Tables 1-6 rows, then Table 7 twice


def test_plot_claim_gains_draws_one_panel_per_claim_with_ours_in_blue():
    records = [_result("demo_classes", "CNN-SVM", 90.0), _result("demo_classes", "CNNaug-SVM", 95.5)]
    figure = notebook.plot_claim_gains(records)
    assert [axis.get_title() for axis in figure.axes] == [claim for _, _, claim in notebook.CLAIMS]
    first = figure.axes[0]
    assert [label.get_text() for label in first.get_yticklabels()][-1] == "ours: demo_classes (net)"
    ours = [bar for bar in first.patches if matplotlib.colors.to_hex(bar.get_facecolor()) == "#08519c"]
    assert len(ours) == 1 and ours[0].get_width() == pytest.approx(5.5)
    assert len(figure.axes[1].patches) == 5  # Table 7's five benchmarks, no run of ours


def test_few_shot_scores_average_each_setting_over_the_same_draws(tmp_path):
    record = _few_shot_record(tmp_path)
    rng = np.random.default_rng(0)
    separable = 5 * np.eye(4)[record.labels] + 0.1 * rng.standard_normal((len(record), 4))
    # view 0 is the same vector for every image (chance: one class of three right), view 1 separates the classes
    X = np.stack([np.ones_like(separable), separable], axis=1).astype(np.float32)
    curves = notebook.few_shot_scores(record, X, [1, 3], {"view 0": {"views": "whole"}, "both views": {"views": "all"}},
                                      repeats=2, C=2.0)
    assert curves == {"view 0": [pytest.approx(100 / 3)] * 2, "both views": [100.0, 100.0]}
    with pytest.raises(ValueError, match="repeats must be at least 1; got 0"):
        notebook.few_shot_scores(record, X, [1], {"view 0": {"views": "whole"}}, repeats=0)
