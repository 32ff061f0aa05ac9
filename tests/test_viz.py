"""Plot helpers: the numbers and lines a reader needs are on the figure."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from conftest import classes_record
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from course_utils import backbones, claims, viz
from course_utils.datasets.base import DatasetRecord
from course_utils.report import ResultRecord


@pytest.fixture(autouse=True)
def _close_figures():
    with matplotlib.rc_context():
        yield
    plt.close("all")


def test_bar_chart_shows_the_reference_line_and_every_label():
    names = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    fig = viz.plot_bars(names, [89.8, 88.8, 89.0], "mean class accuracy", "flowers102: accuracy against network",
                        reference=74.7, reference_label="paper")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low <= 74.7 - 5 and high >= 89.8  # the paper's line, far below the bars, is still on the chart
    assert [text.get_text() for text in ax.get_xticklabels()] == names
    assert all(text.get_rotation() == 20 for text in ax.get_xticklabels())  # long names slanted
    assert [text.get_text() for text in ax.texts] == ["89.8", "88.8", "89.0"]  # each bar labelled with its value
    assert [label.get_text() for label in ax.get_legend().get_texts()] == ["paper"]


def test_bar_chart_of_short_labels_keeps_them_level_and_caps_the_axis_at_100():
    fig = viz.plot_bars(["1", "0.5", "2"], [98.0, 99.0, 96.0], "accuracy")
    ax = fig.axes[0]
    assert ax.get_ylim() == (86.0, 100.0)
    assert all(text.get_rotation() == 0 for text in ax.get_xticklabels())


# --- image grids, filters, the network's input ----------------------------------------------------------------


def test_show_images_draws_one_axis_per_image_in_a_grid():
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    grey = np.arange(12, dtype=np.float32).reshape(3, 4)
    images = [rgb, grey, Image.new("RGB", (6, 2), (0, 255, 0)), rgb, rgb]
    figure = viz.show_images(images, titles=list("abcde"), ncols=2)
    assert len(figure.axes) == 5
    assert figure.axes[4].get_subplotspec().get_geometry() == (3, 2, 4, 4)  # 3 rows of 2, fifth cell
    assert [axis.get_title() for axis in figure.axes] == list("abcde")
    np.testing.assert_array_equal(figure.axes[1].images[0].get_array(), grey)
    assert figure.axes[1].images[0].get_cmap().name == "gray"
    assert figure.axes[2].images[0].get_array().shape == (2, 6, 3)
    assert not figure.axes[0].axison


def test_show_images_caps_columns_at_the_number_of_images():
    figure = viz.show_images([np.zeros((2, 2))] * 3)
    assert figure.axes[0].get_subplotspec().get_geometry()[:2] == (1, 3)


def test_show_images_rejects_bad_input_clearly():
    with pytest.raises(ValueError, match="at least one image; it was given none"):
        viz.show_images([])
    with pytest.raises(ValueError, match="got 2 images but 1 titles"):
        viz.show_images([np.zeros((2, 2))] * 2, titles=["one"])
    with pytest.raises(ValueError, match=r"Image 1 has shape \(3, 8, 8\).*transpose\(1, 2, 0\)"):
        viz.show_images([np.zeros((8, 8)), np.zeros((3, 8, 8))])


def test_first_conv_filters_takes_the_first_colour_convolution_and_scales_each_filter():
    grey_conv, colour_conv = nn.Conv2d(1, 4, 1), nn.Conv2d(3, 2, 2)
    with torch.no_grad():
        colour_conv.weight[0] = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2) - 4.0  # -4 .. 7
        colour_conv.weight[1] = 0.25  # a constant filter has no pattern: drawn mid-grey
    filters = viz.first_conv_filters(nn.Sequential(grey_conv, colour_conv))
    assert filters.shape == (2, 2, 2, 3) and filters.dtype == np.float32
    # filter 0, channel c, row i, column j held c*4 + i*2 + j - 4; scaled by (w - (-4)) / 11
    expected = (np.arange(12).reshape(3, 2, 2).transpose(1, 2, 0)) / 11.0
    np.testing.assert_allclose(filters[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(filters[1], np.full((2, 2, 3), 0.5, dtype=np.float32))


def test_first_conv_filters_names_what_to_pass_instead():
    with pytest.raises(ValueError, match="Linear has no Conv2d with 3 input channels; pass the network itself"):
        viz.first_conv_filters(nn.Linear(3, 3))


def test_network_view_undoes_the_normalisation():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    net = SimpleNamespace(transform=backbones.make_transform(32, mean, std), mean=mean, std=std)
    pixels = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    view = viz.network_view(net, Image.fromarray(pixels))
    assert view.shape == (32, 32, 3)
    np.testing.assert_allclose(view * 255, pixels, atol=1e-3)


def test_network_view_squashes_to_the_input_square():
    half = (0.5, 0.5, 0.5)
    net = SimpleNamespace(transform=backbones.make_transform(16, half, half), mean=half, std=half)
    view = viz.network_view(net, Image.new("RGB", (40, 30), (255, 0, 0)))
    assert view.shape == (16, 16, 3)
    np.testing.assert_allclose(view, np.broadcast_to([1.0, 0.0, 0.0], (16, 16, 3)), atol=1e-6)


def test_plot_paper_claim_draws_three_bars_per_benchmark_with_the_tables_values():
    figure = viz.plot_paper_claim()
    rows = claims.paper_claim()
    (axis,) = figure.axes
    heights = [[bar.get_height() for bar in container] for container in axis.containers]
    assert heights == [[r.prior for r in rows], [r.cnn for r in rows], [r.cnn_aug for r in rows]]
    assert [label.get_text() for label in axis.get_xticklabels()] == [r.task for r in rows]


def test_draw_data_flow_names_every_module_and_draws_every_arrow():
    figure = viz.draw_data_flow()
    (axis,) = figure.axes
    texts = {text.get_text() for text in axis.texts}
    for stage, module, notebooks in (*viz.DATA_FLOW, viz.RETRIEVAL_BRANCH):
        assert {stage, module, f"nb {notebooks}"} <= texts
    arrows = [text for text in axis.texts if getattr(text, "arrow_patch", None) is not None]
    assert len(arrows) == len(viz.DATA_FLOW) - 1 + 2  # the main line, then into and out of retrieval


def _rectangles(axis: Axes) -> list[Rectangle]:
    return [patch for patch in axis.patches if isinstance(patch, Rectangle)]


def test_draw_boxes_draws_each_named_box_at_its_pixels():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    figure = viz.draw_boxes(image, {"box": (10, 20, 60, 90), "enlarged": (0, 5, 85, 100)})
    (axis,) = figure.axes
    rectangles = _rectangles(axis)
    assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in rectangles] == [
        (10, 20, 50, 70), (0, 5, 85, 95)]
    assert [text.get_text() for text in axis.texts] == ["box", "enlarged"]
    assert rectangles[0].get_edgecolor() != rectangles[1].get_edgecolor()


def test_draw_patch_pyramid_shows_each_level_and_the_running_total():
    from course_utils.retrieval import patch_boxes

    image = Image.new("RGB", (120, 90))
    figure = viz.draw_patch_pyramid(image, levels=4)
    assert [axis.get_title() for axis in figure.axes] == [
        "level 1: 1 patch (total 1)", "level 2: 4 patches (total 5)", "level 3: 9 patches (total 14)",
        "level 4: 16 patches (total 30)"]
    def corners(r: Rectangle) -> tuple[int, int, int, int]:
        return round(r.get_x()), round(r.get_y()), round(r.get_x() + r.get_width()), round(r.get_y() + r.get_height())

    outlines = [corners(r) for axis in figure.axes for r in _rectangles(axis) if not r.get_fill()]
    assert outlines == patch_boxes(120, 90, 4)
    assert outlines[1] == (0, 0, 80, 60)  # level 2: side 2/3 of each axis, 50% overlap
    shaded = [corners(r) for axis in figure.axes for r in _rectangles(axis) if r.get_fill()]
    assert shaded == [(0, 0, 120, 90), (0, 0, 80, 60), (0, 0, 60, 45), (0, 0, 48, 36)]  # each level's first patch


def test_show_confused_pairs_puts_each_mistake_beside_the_class_it_was_taken_for(tmp_path):
    record = classes_record(tmp_path)
    for i, path in enumerate(record.paths):  # the red channel encodes the image number
        Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(path)
    test = record.indices("test")  # 9..17, labels 0 1 2 0 1 2 0 1 2
    y_true = record.labels[test]
    y_pred = np.array([1, 1, 2, 1, 1, 0, 1, 1, 0])  # a->b three times (9, 12, 15), c->a twice (14, 17)
    outcome = SimpleNamespace(y_true=y_true, y_pred=y_pred, test_indices=test)
    figure = viz.show_confused_pairs(record, outcome, top=2)
    assert [axis.get_title() for axis in figure.axes] == [
        "a\ntaken for b (3x)", "a training\nb", "c\ntaken for a (2x)", "a training\na"]
    shown = [int(axis.images[0].get_array()[0, 0, 0]) // 10 for axis in figure.axes]
    assert shown == [9, 1, 14, 0]  # first mistaken test image, then the first training image of the other class


def test_show_confused_pairs_without_mistakes_or_for_multilabel_outcomes():
    record = classes_record()
    labels = record.labels[record.indices("test")]
    figure = viz.show_confused_pairs(record, SimpleNamespace(y_true=labels, y_pred=labels, test_indices=None))
    assert figure.axes[0].texts[0].get_text() == "no confusions: every test image is classified correctly"
    with pytest.raises(ValueError, match="needs a single-label outcome"):
        viz.show_confused_pairs(record, SimpleNamespace(y_true=labels, y_pred=None, test_indices=None))


def test_rotated_to_original_finds_the_photo_pixel_that_pil_rotated_there():
    # a smooth gradient: red grows with x, green with y, so a pixel's colour says where it came from
    x, y = np.meshgrid(np.arange(200), np.arange(150))
    pixels = np.stack([x * 255 / 199, y * 255 / 149, np.full_like(x, 128.0)], axis=-1).round().astype(np.uint8)
    rotated = np.asarray(Image.fromarray(pixels).rotate(10, resample=Image.Resampling.BILINEAR))
    for px, py in ((140, 105), (60, 40), (150, 30)):
        ((sx, sy),) = viz.rotated_to_original(np.array([[px + 0.5, py + 0.5]]), 200, 150, 10)
        expected = (sx - 0.5) * 255 / 199, (sy - 0.5) * 255 / 149  # pixel centres sit at +0.5
        assert rotated[py, px, :2] == pytest.approx(expected, abs=3)
    # the wrong direction would land ~10 pixels away on this offset: the check above can tell
    ((wx, wy),) = viz.rotated_to_original(np.array([[140.5, 105.5]]), 200, 150, -10)
    assert abs(rotated[105, 140, 1] - (wy - 0.5) * 255 / 149) > 10


def test_view_outlines_are_the_papers_windows_on_the_photo():
    outlines = viz.view_outlines("paper16", 90, 60)
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
    figure = viz.plot_view_boxes(chelsea)
    (axis,) = figure.axes
    assert len(axis.patches) == 8
    assert [text.get_text() for text in axis.get_legend().get_texts()] == list(viz.view_outlines(
        "paper16", chelsea.width, chelsea.height))

    class Boxless:  # a valid view spec that cannot say where its views are
        name, view_names, n_views = "boxless", ["whole"], 1

        def __call__(self, image):
            return [image]

    with pytest.raises(TypeError, match="has no boxes"):
        viz.view_outlines(Boxless(), 9, 9)


def _result(dataset: str, method: str, value: float) -> ResultRecord:
    return ResultRecord(dataset, "task", method, "net", "mean class accuracy", value)


def test_plot_claim_gains_draws_one_panel_per_claim_with_ours_in_blue():
    records = [_result("demo_classes", "CNN-SVM", 90.0), _result("demo_classes", "CNNaug-SVM", 95.5)]
    figure = viz.plot_claim_gains(records)
    assert [axis.get_title() for axis in figure.axes] == [claim for _, _, claim in claims.CLAIMS]
    first = figure.axes[0]
    assert [label.get_text() for label in first.get_yticklabels()][-1] == "ours: demo_classes (net)"
    ours = [bar for bar in first.patches if matplotlib.colors.to_hex(bar.get_facecolor()) == "#08519c"]
    assert len(ours) == 1 and ours[0].get_width() == pytest.approx(5.5)
    assert len(figure.axes[1].patches) == 5  # Table 7's five benchmarks, no run of ours


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


def test_retrieval_gallery_frames_each_result_by_the_evaluations_junk_rule(tmp_path):
    from dataclasses import fields

    from course_utils.datasets.base import Query
    from course_utils.retrieval import RetrievalOutcome, evaluate_retrieval

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(paths[-1])
    # query image 0 is searched and not its own positive (junk); 1 is a positive; 3 is listed junk; 2 is wrong
    record = DatasetRecord("toy", "retrieval", tmp_path, paths, queries=[Query(0, positives=[1], junk=[3])],
                           database=np.arange(4))
    ranks = np.array([[0, 2, 1, 3]])
    scores = evaluate_retrieval(record, ranks=ranks)
    outcome = RetrievalOutcome(**{f.name: getattr(scores, f.name) for f in fields(scores)}, ranks=ranks,
                               distances=None, layer="l", seconds={}, dataset="toy", backbone="b", method="global",
                               setting="s", db_index=np.arange(4), query_index=np.array([0]))
    figure = viz.retrieval_gallery(record, outcome, top=4)
    colours = [matplotlib.colors.to_hex(axis.title.get_color()) for axis in figure.axes[1:]]
    assert colours == ["#7f7f7f", "#d62728", "#2ca02c", "#7f7f7f"]  # junk, wrong, relevant, junk
    assert [int(axis.images[0].get_array()[0, 0, 0]) for axis in figure.axes[1:]] == [0, 80, 40, 120]
