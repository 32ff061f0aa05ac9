"""course_utils.notebook: the helpers that keep notebook cells short, checked against hand-computed values."""

from __future__ import annotations

import html
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
    # PAPER.md: CNNaug-ss loses only on Oxford5k (to ASMK) and Sculptures6k (to BoB)
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
