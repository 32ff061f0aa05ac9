"""course_utils.notebook: the notebooks' set-up facade (and the helpers still waiting for their home), checked
against hand-computed values; and every helper that moved out of it, at its new home."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from conftest import few_shot_record
from PIL import Image

from course_utils import backbones, experiments, notebook


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


def test_sample_photos_are_scikit_images_bundled_rgb_photographs():
    photos = notebook.sample_photos(["chelsea", "coffee"])
    assert list(photos) == ["chelsea", "coffee"]
    assert photos["chelsea"].size == (451, 300) and photos["chelsea"].mode == "RGB"
    assert photos["coffee"].size == (600, 400)
    with pytest.raises(ValueError, match=r"Unknown sample photo\(s\) \['dog'\]; choose from"):
        notebook.sample_photos(["chelsea", "dog"])


@pytest.fixture(scope="module")
def untrained_lite0():
    """The real network with random weights: the explorer's plumbing does not need ImageNet's, and it builds fast."""
    return backbones.load("efficientnet_lite0", pretrained=False)


def test_backbone_embed_matches_the_cached_extraction_of_the_same_pixels(untrained_lite0, tmp_path):
    from course_utils import features

    photos = [notebook.sample_photos(["coffee"])["coffee"], Image.fromarray(np.full((40, 60, 3), 90, np.uint8))]
    paths = []
    for i, photo in enumerate(photos):
        paths.append(tmp_path / f"photo_{i}.png")  # PNG is lossless: the files hold exactly these pixels
        photo.save(paths[-1])
    got = untrained_lite0.embed(photos)
    assert got.shape == (2, untrained_lite0.layers[untrained_lite0.default_layer])
    reference = features.extract(paths, untrained_lite0, views="whole", engine="torch", cache=False, progress=False)
    np.testing.assert_allclose(got, reference[untrained_lite0.default_layer][:, 0], rtol=1e-4, atol=1e-5)
    assert untrained_lite0.embed(photos[:1], layer="stage2").shape == (1, 24)
    with pytest.raises(ValueError, match="needs at least one image"):
        untrained_lite0.embed([])


def test_few_shot_scores_average_each_setting_over_the_same_draws(tmp_path):
    record = few_shot_record(tmp_path)
    rng = np.random.default_rng(0)
    separable = 5 * np.eye(4)[record.labels] + 0.1 * rng.standard_normal((len(record), 4))
    # view 0 is the same vector for every image (chance: one class of three right), view 1 separates the classes
    X = np.stack([np.ones_like(separable), separable], axis=1).astype(np.float32)
    curves = experiments.few_shot_scores(record, X, [1, 3], {"view 0": {"use_views": "whole"}, "both views": {"use_views": "all"}},
                                      repeats=2, C=2.0)
    assert curves == {"view 0": [pytest.approx(100 / 3)] * 2, "both views": [100.0, 100.0]}
    with pytest.raises(ValueError, match="repeats must be at least 1; got 0"):
        experiments.few_shot_scores(record, X, [1], {"view 0": {"use_views": "whole"}}, repeats=0)


# --- where every helper lives (issue 20: notebook.py is only the set-up facade) ---------------------------------

MOVED = {
    "course_utils.viz": ["show_images", "first_conv_filters", "network_view", "plot_paper_claim", "plot_claim_gains",
                         "draw_data_flow", "draw_boxes", "draw_patch_pyramid", "show_confused_pairs",
                         "rotated_to_original", "view_outlines", "plot_view_boxes"],
    "course_utils.widgets": ["prediction_explorer", "format_predictions"],
    "course_utils.datasets.subsets": ["class_subset", "retrieval_subset", "few_shot_indices"],
    "course_utils.claims": ["paper_claim", "ClaimRow", "claim_gains", "ClaimGain"],
    "course_utils.experiments": ["few_shot_scores"],
}


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in MOVED.items() for n in names])
def test_each_moved_helper_is_defined_at_its_new_home(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name).__module__ == module


def test_notebook_defines_only_the_set_up_facade():
    import inspect

    defined = {name for name, value in vars(notebook).items()
               if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
               and value.__module__ == notebook.__name__}
    assert defined == {"setup", "SetupInfo", "sample_photos"}
