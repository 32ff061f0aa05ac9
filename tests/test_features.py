"""Feature extraction: values, shapes, the cache and its key, resuming, bad images, boxes and bounded memory.

Most tests use a tiny real network (one convolution and one linear layer on 16 x 16 inputs) wrapped as a
:class:`~course_utils.backbones.Backbone`, so that the whole pipeline runs in milliseconds; one test checks the real
EfficientNet-Lite0 against a direct forward pass.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_photo
from PIL import Image
from torch import nn

from course_utils import augment, engines, features
from course_utils.backbones import Backbone, make_transform
from course_utils.features import FeatureSet, extract, plan_workers
from course_utils.imageio import BadImageError, open_rgb

TESTS_DIR = Path(__file__).resolve().parent


class TinyNet(nn.Module):
    def __init__(self, fc_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2)
        self.fc = nn.Linear(8, fc_dim)


class TinyExtractor(nn.Module):
    """Returns the requested layers of :class:`TinyNet`: ``conv`` (8-d, average pooled) and ``fc``."""

    def __init__(self, net: TinyNet, layers: list[str]) -> None:
        super().__init__()
        self.net, self.layer_names = net, layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled = self.net.conv(x).relu().mean(dim=(2, 3))
        outputs = {"conv": pooled, "fc": self.net.fc(pooled)}
        return tuple(outputs[name] for name in self.layer_names)


class TinyBackbone(Backbone):
    def extractor(self, layers=None):
        layers = [self.default_layer] if layers is None else [layers] if isinstance(layers, str) else list(layers)
        return TinyExtractor(self.model, layers).eval()


def tiny_backbone(seed: int = 0, fc_dim: int = 6) -> TinyBackbone:
    """A small real network with fixed random weights: same seed, same features."""
    torch.manual_seed(seed)
    net = TinyNet(fc_dim).eval()
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    return TinyBackbone(
        name="tiny", model=net, transform=make_transform(16, mean, std), layers={"conv": 8, "fc": fc_dim},
        categories=[], input_size=16, mean=mean, std=std, weights_id=f"tiny-seed{seed}-fc{fc_dim}",
        default_layer="fc", pretrained=False,
    )


def write_photos(folder: Path, count: int, suffix: str = ".jpg", start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(start, start + count):
        path = folder / f"img{seed:04d}{suffix}"
        random_photo(seed).save(path)
        paths.append(path)
    return paths


def reference(backbone: Backbone, path: Path, layer: str, views: str = "whole") -> np.ndarray:
    """Features computed by hand: decode, cut the views, transform, one forward pass. Shape ``(V, D)``."""
    images = augment.get_views(views)(open_rgb(path))
    batch = torch.stack([backbone.transform(image) for image in images])
    with torch.inference_mode():
        return backbone.extractor([layer])(batch)[0].numpy()


class CountingEngines:
    """Wraps ``engines.make_engine`` to count engines built and images (view rows) pushed through them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.built, self.rows = 0, 0
        real = engines.make_engine

        def make_engine(*args, **kwargs):
            engine = real(*args, **kwargs)
            self.built += 1

            def forward(batch):
                self.rows += len(batch)
                return engine(batch)

            forward.preferred_batch_size = engine.preferred_batch_size
            return forward

        monkeypatch.setattr(engines, "make_engine", make_engine)


def run(paths, cache, **kwargs) -> FeatureSet:
    kwargs.setdefault("backbone", tiny_backbone())
    kwargs.setdefault("engine", "torch")
    kwargs.setdefault("num_workers", 0)
    kwargs.setdefault("progress", False)
    return extract(paths, cache=cache, **kwargs)


def test_shapes_dtypes_and_values_match_a_direct_forward_pass(tmp_path):
    paths = write_photos(tmp_path / "img", 3)
    backbone = tiny_backbone()
    result = run(paths, tmp_path / "cache", backbone=backbone, layers=["conv", "fc"], views="paper16", batch_size=8)
    assert result.layers == ["conv", "fc"]
    assert result["conv"].shape == (3, 16, 8) and result["fc"].shape == (3, 16, 6)
    assert result["conv"].dtype == np.float32 and result["fc"].dtype == np.float32
    assert result.view_names == augment.get_views("paper16").view_names and result.n_views == 16
    assert [str(p) for p in result.paths] == [str(p) for p in paths] and len(result) == 3
    assert result.valid.all() and result.skipped == []
    for i, path in enumerate(paths):
        np.testing.assert_allclose(result["conv"][i], reference(backbone, path, "conv", "paper16"), atol=1e-5)
        np.testing.assert_allclose(result["fc"][i], reference(backbone, path, "fc", "paper16"), atol=1e-5)
    assert not result["fc"].flags.writeable
    with pytest.raises(KeyError, match=r"No layer 'pool' in this FeatureSet; it holds \['conv', 'fc'\]"):
        result["pool"]


def test_view_loader_hands_over_uint8_views_normalised_where_the_network_runs(tmp_path):
    paths = write_photos(tmp_path / "img", 3)
    backbone = tiny_backbone()
    spec = augment.get_views("mirror")
    indices, pixels, reasons = next(iter(features.view_loader(paths, backbone, spec, images_per_batch=3,
                                                              num_workers=0)))
    assert indices == [0, 1, 2] and reasons == {}
    assert pixels.shape == (6, 3, 16, 16) and pixels.dtype == torch.uint8  # a quarter of float32's bytes
    expected = torch.stack([backbone.transform(view) for path in paths for view in spec(open_rgb(path))])
    assert torch.equal(backbone.transform.standardize(pixels), expected)
    # A transform without the two halves runs whole in the loader: float32 comes out.
    backbone.transform = CountingTransform(backbone.transform)
    _, pixels, _ = next(iter(features.view_loader(paths, backbone, spec, images_per_batch=3, num_workers=0)))
    assert pixels.dtype == torch.float32 and torch.equal(pixels, expected)


class CountingTransform:
    """A backbone transform that counts its calls, optionally looking only at the left part of each image."""

    def __init__(self, transform, left_only: bool = False) -> None:
        self.transform, self.left_only, self.calls = transform, left_only, 0

    def __call__(self, image: Image.Image) -> torch.Tensor:
        self.calls += 1
        if self.left_only:  # does not commute with mirroring
            image = image.crop((0, 0, max(2, image.width * 2 // 3), image.height))
        return self.transform(image)


@pytest.mark.parametrize("left_only", [False, True])
def test_mirrored_views_are_flipped_tensors_only_when_that_is_exact(tmp_path, left_only):
    paths = write_photos(tmp_path / "img", 3)
    backbone = tiny_backbone()
    backbone.transform = CountingTransform(backbone.transform, left_only)
    result = run(paths, False, backbone=backbone, views="paper16")
    # First image: the check transforms it twice; then 8 base views per image, or all 16 without the shortcut.
    assert backbone.transform.calls == 2 + 3 * (16 if left_only else 8)
    backbone.transform.calls = 0
    for i, path in enumerate(paths):
        np.testing.assert_allclose(result["fc"][i], reference(backbone, path, "fc", "paper16"), atol=1e-5)


def test_real_efficientnet_features_match_a_direct_forward_pass(tmp_path, lite0):
    paths = write_photos(tmp_path / "img", 2)
    result = run(paths, tmp_path / "cache", backbone=lite0, layers=["pool", "stage4"], views="mirror")
    assert result["pool"].shape == (2, 2, 1280) and result["stage4"].shape == (2, 2, 80)
    for i, path in enumerate(paths):
        np.testing.assert_allclose(result["pool"][i], reference(lite0, path, "pool", "mirror"), atol=1e-4)
    # The mirror is a different picture, so it gives a different (but related) feature.
    whole, flipped = result["pool"][0]
    assert not np.allclose(whole, flipped, atol=1e-3)
    assert np.dot(whole, flipped) / (np.linalg.norm(whole) * np.linalg.norm(flipped)) > 0.5


def test_second_call_reads_the_cache_without_running_the_network(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", 6)
    counter = CountingEngines(monkeypatch)
    first = run(paths, tmp_path / "cache", views="mirror")
    assert (counter.built, counter.rows) == (1, 12) and not first.from_cache
    second = run(paths, tmp_path / "cache", views="mirror", engine="auto", batch_size=3)  # engine not in the key
    assert (counter.built, counter.rows) == (1, 12) and second.from_cache
    assert second.cache_path == first.cache_path
    np.testing.assert_array_equal(second["fc"], first["fc"])
    fresh = run(paths, False, views="mirror")
    assert fresh.cache_path is None and not list((tmp_path / "cache").glob("features/*/progress.json"))
    np.testing.assert_allclose(fresh["fc"], first["fc"], atol=1e-6)
    entry = first.cache_path
    assert json.loads((entry / "complete.json").read_text())["n_images"] == 6
    assert json.loads((entry / "key.json").read_text())["views"]["name"] == "mirror"


def test_the_engine_is_built_once_for_successive_calls(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", 4)
    counter = CountingEngines(monkeypatch)
    backbone = tiny_backbone()
    first = run(paths[:2], False, backbone=backbone)
    second = run(paths[2:], False, backbone=backbone)  # e.g. the test split after the train split
    assert counter.built == 1 and counter.rows == 4
    run(paths, False, backbone=backbone, layers=["conv", "fc"])  # other layers: another engine
    assert counter.built == 2
    np.testing.assert_array_equal(np.concatenate([first["fc"], second["fc"]]), run(paths, False)["fc"])


def test_cache_key_follows_files_layers_and_views(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", 3)
    cache = tmp_path / "cache"
    base = run(paths, cache).cache_path
    assert run(paths, cache, layers="conv").cache_path != base
    assert run(paths, cache, views="mirror").cache_path != base
    assert run(paths, cache, views=augment.Paper16(degrees=5)).cache_path != run(paths, cache, views="paper16").cache_path
    assert run(paths, cache, backbone=tiny_backbone(seed=1)).cache_path != base
    assert run(paths, cache, boxes=np.full((3, 4), np.nan)).cache_path != base
    assert run(list(reversed(paths)), cache).cache_path != base

    # Images are named by content: neither a new modification time nor another folder changes the key.
    counter = CountingEngines(monkeypatch)
    stat = paths[1].stat()
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touched: same bytes, new mtime
    touched = run(paths, cache)
    assert touched.cache_path == base and touched.from_cache and counter.rows == 0
    moved = shutil.copytree(tmp_path / "img", tmp_path / "elsewhere" / "renamed")
    copied = run([moved / path.name for path in paths], cache)
    assert copied.cache_path == base and copied.from_cache and counter.rows == 0
    assert [str(p) for p in copied.paths] == [str(moved / path.name) for path in paths]  # the caller's paths
    assert "img0000" not in (base / "key.json").read_text()  # no path in the key
    random_photo(99).save(paths[1])  # new content (and size)
    changed = run(paths, cache)
    assert changed.cache_path != base and counter.rows == 3


def test_new_bytes_of_the_same_size_and_time_get_new_features(tmp_path):
    """The case a (size, mtime) key missed: same size (BMP of the same dimensions), modification time put back."""
    paths = write_photos(tmp_path / "img", 2, suffix=".bmp")
    backbone = tiny_backbone()
    first = run(paths, tmp_path / "cache", backbone=backbone)
    stat = paths[0].stat()
    random_photo(77).save(paths[0])
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert paths[0].stat().st_size == stat.st_size and paths[0].stat().st_mtime_ns == stat.st_mtime_ns
    second = run(paths, tmp_path / "cache", backbone=backbone)
    assert second.cache_path != first.cache_path and not second.from_cache
    np.testing.assert_allclose(second["fc"][0], reference(backbone, paths[0], "fc"), atol=1e-5)
    assert not np.allclose(second["fc"][0], first["fc"][0], atol=1e-3)
    np.testing.assert_array_equal(second["fc"][1], first["fc"][1])


def test_interrupted_run_resumes_to_the_same_array(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", 20)
    uninterrupted = run(paths, tmp_path / "other-cache", layers=["conv", "fc"], batch_size=4)

    def stop_after_three_batches(done, total):
        if done == 12:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected failure"):
        run(paths, tmp_path / "cache", layers=["conv", "fc"], batch_size=4, on_batch=stop_after_three_batches)
    (entry,) = (tmp_path / "cache" / "features").iterdir()
    assert not (entry / "complete.json").exists()
    assert json.loads((entry / "progress.json").read_text())["done"] == 12

    counter = CountingEngines(monkeypatch)
    resumed = run(paths, tmp_path / "cache", layers=["conv", "fc"], batch_size=4)
    assert counter.rows == 8 and not resumed.from_cache  # only the 8 images left
    assert (entry / "complete.json").exists() and not (entry / "progress.json").exists()
    for layer in ("conv", "fc"):
        np.testing.assert_array_equal(resumed[layer], uninterrupted[layer])


def test_ctrl_c_leaves_a_resumable_entry(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", 9)

    def ctrl_c(done, total):
        if done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(paths, tmp_path / "cache", batch_size=3, on_batch=ctrl_c)
    counter = CountingEngines(monkeypatch)
    resumed = run(paths, tmp_path / "cache", batch_size=3)
    assert counter.rows == 6
    np.testing.assert_array_equal(resumed["fc"], run(paths, False, batch_size=3)["fc"])


@pytest.mark.slow
def test_killed_process_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    paths = write_photos(tmp_path / "img", 20)
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from test_features import tiny_backbone
        from course_utils import features
        features.CHECKPOINT_SECONDS = 0.0  # checkpoint after every batch

        def kill_after_three_batches(done, total):
            if done == 12:
                os.kill(os.getpid(), signal.SIGKILL)

        paths = {[str(p) for p in paths]!r}
        features.extract(paths, tiny_backbone(), engine="torch", num_workers=0, progress=False, batch_size=4,
                         cache={str(tmp_path / "cache")!r}, on_batch=kill_after_three_batches)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    (entry,) = (tmp_path / "cache" / "features").iterdir()
    assert not (entry / "complete.json").exists()
    assert json.loads((entry / "progress.json").read_text())["done"] == 12

    counter = CountingEngines(monkeypatch)
    resumed = run(paths, tmp_path / "cache", batch_size=4)
    assert counter.rows == 8
    np.testing.assert_array_equal(resumed["fc"], run(paths, False, batch_size=4)["fc"])


def make_bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.jpg"
    random_photo(5).save(good)
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    text = folder / "text.jpg"
    text.write_text("not an image")
    return {"good": good, "truncated": truncated, "text": text, "missing": folder / "missing.jpg"}


def test_bad_image_raises_naming_the_file_and_nothing_is_marked_complete(tmp_path):
    files = make_bad_files(tmp_path / "img")
    paths = write_photos(tmp_path / "img", 4) + [files["truncated"]] + write_photos(tmp_path / "img", 2, start=10)
    with pytest.raises(BadImageError, match=r"Cannot use image .*truncated\.jpg: corrupt or truncated image data"):
        run(paths, tmp_path / "cache", batch_size=2)
    assert not list((tmp_path / "cache").glob("features/*/complete.json"))
    with pytest.raises(BadImageError, match=r"Cannot use image .*missing\.jpg: the file does not exist"):
        run([files["good"], files["missing"]], tmp_path / "cache")


@pytest.mark.parametrize("num_workers", [0, 1])
def test_skip_mode_fills_bad_rows_with_nan_and_reports_them(tmp_path, num_workers):
    files = make_bad_files(tmp_path / "img")
    paths = [files["good"], files["truncated"], files["text"], files["missing"], files["good"]]
    backbone = tiny_backbone()
    result = run(paths, tmp_path / "cache", backbone=backbone, views="mirror", on_error="skip", batch_size=4,
                 num_workers=num_workers)
    assert result.valid.tolist() == [True, False, False, False, True]
    assert np.isnan(result["fc"][1:4]).all() and not np.isnan(result["fc"][[0, 4]]).any()
    np.testing.assert_allclose(result["fc"][4], reference(backbone, files["good"], "fc", "mirror"), atol=1e-5)
    assert [path for path, _ in result.skipped] == [str(files[k]) for k in ("truncated", "text", "missing")]
    reasons = [reason for _, reason in result.skipped]
    assert "corrupt or truncated" in reasons[0] and "not an image" in reasons[1] and "does not exist" in reasons[2]
    again = run(paths, tmp_path / "cache", backbone=backbone, views="mirror", on_error="skip")
    assert again.from_cache and again.skipped == result.skipped and again.valid.tolist() == result.valid.tolist()
    saved = json.loads((result.cache_path / "complete.json").read_text())["skipped"]
    assert [item["index"] for item in saved] == [1, 2, 3]


def test_a_worker_process_gives_the_same_features(tmp_path):
    paths = write_photos(tmp_path / "img", 10)
    in_process = run(paths, False, views="mirror", batch_size=4, num_workers=0)
    with_worker = run(paths, False, views="mirror", batch_size=4, num_workers=1)
    np.testing.assert_array_equal(with_worker["fc"], in_process["fc"])


def test_boxes_crop_each_image_before_its_views(tmp_path):
    source = tmp_path / "source.png"
    random_photo(3, size=(64, 48)).save(source)
    cropped = tmp_path / "cropped.png"
    Image.open(source).crop((8, 4, 40, 36)).save(cropped)
    boxes = np.array([[8, 4, 40, 36], [np.nan] * 4])
    result = run([source, source], False, views="paper16", boxes=boxes)
    np.testing.assert_allclose(result["fc"][0], run([cropped], False, views="paper16")["fc"][0], atol=1e-6)
    np.testing.assert_allclose(result["fc"][1], run([source], False, views="paper16")["fc"][0], atol=1e-6)
    outside = run([source], False, boxes=[[100, 100, 120, 120]], on_error="skip")
    assert "its box (100.0, 100.0, 120.0, 120.0) leaves less than 2x2 pixels" in outside.skipped[0][1]


def test_bad_arguments_are_rejected_with_clear_messages(tmp_path):
    paths = write_photos(tmp_path / "img", 2)
    with pytest.raises(ValueError, match="got no image paths"):
        run([], False)
    with pytest.raises(ValueError, match=r"has no layer 'pool'. Its layers: \['conv', 'fc'\]"):
        run(paths, False, layers="pool")
    with pytest.raises(ValueError, match=r"on_error must be one of \('raise', 'skip'\); got 'ignore'"):
        run(paths, False, on_error="ignore")
    with pytest.raises(ValueError, match=r"boxes must have shape \(2, 4\).*got \(4,\)"):
        run(paths, False, boxes=[0, 0, 5, 5])
    with pytest.raises(ValueError, match="Box of image 1 .* is empty"):
        run(paths, False, boxes=[[0, 0, 5, 5], [5, 5, 5, 9]])
    with pytest.raises(ValueError, match="batch_size must be a positive"):
        run(paths, False, batch_size=0)
    with pytest.raises(ValueError, match="Unknown views 'paper15'"):
        run(paths, False, views="paper15")


def test_a_layer_wider_or_narrower_than_declared_is_reported(tmp_path):
    paths = write_photos(tmp_path / "img", 2)
    backbone = tiny_backbone()
    backbone.layers = {"conv": 8, "fc": 7}  # the network really gives 6
    with pytest.raises(RuntimeError, match=r"Layer 'fc' of 'tiny' gives 6 values per view, but the backbone declares 7"):
        run(paths, tmp_path / "cache", backbone=backbone)
    assert not list((tmp_path / "cache").glob("features/*/complete.json"))


class CallCostEngines:
    """Wraps ``engines.make_engine`` so that a call costs ``cost(batch)`` seconds more: a machine whose best batch is
    known in advance."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cost) -> None:
        self.views = 0
        real = engines.make_engine

        def make_engine(*args, **kwargs):
            engine = real(*args, **kwargs)

            def forward(batch):
                self.views += len(batch)
                time.sleep(cost(len(batch)))
                return engine(batch)

            forward.name, forward.preferred_batch_size = "slow-torch", engine.preferred_batch_size
            return forward

        monkeypatch.setattr(engines, "make_engine", make_engine)


@pytest.mark.parametrize(("cost", "best"), [(lambda b: 0.01, 4), (lambda b: 0.01 * (b - 1) * b, 1)])
def test_batch_size_probe_finds_the_fastest_and_remembers_it(tmp_path, monkeypatch, cost, best):
    # A fixed cost per call favours the larger batch; a cost growing with the batch's square favours batch 1.
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "course-cache"))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # a quiet machine: the result is remembered
    monkeypatch.setattr(features, "PROBE_BATCHES", {"cpu": (1, 4), "cuda": (1, 4)})
    counter = CallCostEngines(monkeypatch, cost)
    backbone = tiny_backbone()
    assert features.tune_batch_size(backbone, engine="torch") == best
    assert counter.views == (1 + 4) + 3 * 2 * 4  # warm-up, then 3 rounds of 4 views per candidate
    table = json.loads((tmp_path / "course-cache" / "batch_sizes.json").read_text())
    (entry,) = table.values()
    assert entry["batch"] == best and set(entry["views_per_second"]) == {"1", "4"}
    assert features.tune_batch_size(backbone, engine="torch") == best and counter.views == 29  # remembered
    paths = write_photos(tmp_path / "img", 3)
    result = run(paths, tmp_path / "cache", backbone=backbone)  # a small job uses the remembered size
    assert json.loads((result.cache_path / "complete.json").read_text())["batch_size"] == best


def test_a_probe_on_a_busy_machine_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "course-cache"))
    monkeypatch.setattr(features, "PROBE_BATCHES", {"cpu": (1, 4), "cuda": (1, 4)})
    monkeypatch.setattr(os, "getloadavg", lambda: (40.0, 40.0, 40.0))
    CallCostEngines(monkeypatch, lambda b: 0.01)
    assert features.tune_batch_size(tiny_backbone(), engine="torch") == 4
    assert not (tmp_path / "course-cache" / "batch_sizes.json").exists()


def test_a_large_job_measures_its_batch_size(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "course-cache"))
    monkeypatch.setattr(features, "PROBE_MIN_FORWARDS", 6)
    monkeypatch.setattr(features, "PROBE_BATCHES", {"cpu": (1, 32), "cuda": (1, 32)})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    CallCostEngines(monkeypatch, lambda b: 0.01)
    paths = write_photos(tmp_path / "img", 3)
    small = run(paths, tmp_path / "cache", backbone=tiny_backbone())  # 3 forwards: below the threshold
    assert json.loads((small.cache_path / "complete.json").read_text())["batch_size"] == 16  # the engine's choice
    large = run(paths, tmp_path / "cache", backbone=tiny_backbone(), views="mirror")  # 6 forwards: measured
    assert json.loads((large.cache_path / "complete.json").read_text())["batch_size"] == 32
    assert (tmp_path / "course-cache" / "batch_sizes.json").is_file()


def test_memory_stays_bounded_by_the_batch(tmp_path):
    # 64 x 48 images through a network with a 1024-d layer and 2 views: 8 KiB of features per image.
    backbone = tiny_backbone(fc_dim=1024)
    small = write_photos(tmp_path / "img", 20)
    large = small + write_photos(tmp_path / "img", 180, start=20)

    def peak_bytes(paths, cache):
        tracemalloc.start()
        run(paths, cache, backbone=backbone, views="mirror", batch_size=32)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    extra_features = 180 * 2 * 1024 * 4  # what 180 more images add to an in-memory array
    growth_cached = peak_bytes(large, tmp_path / "cache") - peak_bytes(small, tmp_path / "cache")
    growth_in_memory = peak_bytes(large, False) - peak_bytes(small, False)
    assert growth_in_memory > 0.9 * extra_features  # the measurement sees an array growing with N...
    assert growth_cached < 0.2 * extra_features  # ...and the memory-mapped store does not grow like one


def test_plan_workers():
    assert plan_workers(3, "cpu", "torch", cores=16) == (0, 16)  # few images: no worker
    assert plan_workers(500, "cpu", "torch", cores=2) == (0, 2)  # 2 cores: decoding between forward passes
    assert plan_workers(500, "cpu", "onnxruntime", cores=2) == (0, 1)  # ONNX Runtime brings its own threads
    assert plan_workers(500, "cpu", "compile", cores=16) == (4, 16)
    assert plan_workers(500, "cuda", "torch", cores=16) == (15, 16)  # all but one core decode for a GPU
    assert plan_workers(500, "cuda", "torch", cores=64) == (features.MAX_GPU_WORKERS, 64)
    assert plan_workers(500, "cuda:0", "torch", cores=2) == (1, 2)


def test_clear_cache_removes_entries(tmp_path):
    paths = write_photos(tmp_path / "img", 2)
    run(paths, tmp_path / "cache")
    run(paths, tmp_path / "cache", views="mirror")
    assert features.clear_cache(tmp_path / "cache") == 2
    assert not list((tmp_path / "cache" / "features").iterdir())
    assert features.clear_cache(tmp_path / "nothing-here") == 0
