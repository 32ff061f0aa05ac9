"""Inference engines: ONNX Runtime gives PyTorch's features, its export is cached and verified, and every failure
ends in PyTorch with a warning that says why."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils import backbones, engines

SWEEP = ["stage3", "stage6", "head@gem", "head@max", "pool", "logits"]


def l2(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def photos(net: backbones.Backbone, *images: Image.Image) -> torch.Tensor:
    return torch.stack([net.transform(image) for image in images])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lite1():
    return backbones.load("efficientnet_lite1")


@pytest.fixture(scope="module")
def lite2():
    return backbones.load("efficientnet_lite2")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder for tests that count exports or damage cached files."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def lite0_pool_export(lite0) -> dict[str, bytes]:
    """The verified export of efficientnet_lite0 cut at ``pool`` (file and sidecar), made once for the module."""
    path = engines.make_engine(lite0, ["pool"], "onnxruntime").onnx_path
    return {suffix: path.with_suffix(suffix).read_bytes() for suffix in (".onnx", ".json")}


@pytest.fixture
def export_calls(monkeypatch):
    """The list of (backbone, layers) of every ONNX export made during the test."""
    calls = []
    real = engines.export_onnx

    def counting(backbone, layers, path, device="cpu"):
        calls.append((backbone.name, list(layers)))
        return real(backbone, layers, path, device=device)

    monkeypatch.setattr(engines, "export_onnx", counting)
    return calls


# ------------------------------------------------------------------------------------------- same features


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_onnxruntime_features_match_pytorch_for_every_offline_backbone(name, request, chelsea, coffee):
    net = request.getfixturevalue(name.replace("efficientnet_", ""))
    batch = photos(net, chelsea, coffee, chelsea.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    onnx = engines.make_engine(net, ["pool"], "onnxruntime")
    assert onnx.name == "onnxruntime" and onnx.max_abs_diff <= engines.TOLERANCE
    got = onnx(batch)[0]
    expected = engines.make_engine(net, ["pool"], "torch", channels_last=False)(batch)[0]
    assert got.shape == expected.shape == (3, 1280) and got.dtype == np.float32
    assert np.abs(l2(got) - l2(expected)).max() < engines.TOLERANCE
    # The photos really differ (a cat and a cup), so agreeing on them means something.
    assert np.linalg.norm(l2(got)[0] - l2(got)[1]) > 0.3


def test_layer_sweep_export_matches_pytorch_layer_by_layer(lite0, chelsea, coffee):
    onnx = engines.make_engine(lite0, SWEEP, "onnxruntime")
    assert onnx.name == "onnxruntime"
    assert [output.name for output in onnx.session.get_outputs()] == [f"feature{i}" for i in range(len(SWEEP))]
    assert isinstance(onnx.session.get_inputs()[0].shape[0], str)  # a symbolic, dynamic batch axis
    eager = engines.make_engine(lite0, SWEEP, "torch")
    for batch in (photos(lite0, chelsea), photos(lite0, chelsea, coffee, coffee, chelsea, coffee)):
        got, expected = onnx(batch), eager(batch)
        for layer, a, b in zip(SWEEP, got, expected, strict=True):
            assert a.shape == (len(batch), lite0.layers[layer.split("@")[0]]), layer
            assert np.abs(l2(a) - l2(b)).max() < engines.TOLERANCE, layer
    # max and gem pooling of the same map are different features, not one output copied twice
    assert np.abs(l2(got[2]) - l2(got[3])).max() > 1e-2


# ---------------------------------------------------------------------------------------------------- choice


def test_auto_picks_onnxruntime_on_a_cpu_and_says_so(lite0):
    engine = engines.make_engine(lite0, ["pool"], "auto", device="cpu")
    assert engine.name == "onnxruntime"
    assert engine.reason.startswith("auto: onnxruntime on the CPU (CPUExecutionProvider")
    assert engine.preferred_batch_size == engines.PREFERRED_BATCH[("onnxruntime", "cpu")]
    assert not engine.channels_last


def test_auto_picks_torch_when_onnxruntime_is_missing(lite0, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes "import onnxruntime" raise ImportError
    engine = engines.make_engine(lite0, ["pool"], "auto", device="cpu")
    assert engine.name == "torch" and isinstance(engine, engines.TorchEngine)
    assert "onnxruntime is not installed" in engine.reason
    assert "onnxruntime" not in engines.available_engines()
    with pytest.raises(engines.EngineUnavailableError, match=r"needs the onnxruntime package.*pip install onnxruntime"):
        engines.make_engine(lite0, ["pool"], "onnxruntime")


def test_unknown_engine_lists_the_valid_names(lite0):
    with pytest.raises(ValueError, match=r"Unknown engine 'tensorrt'; choose one of auto, torch, onnxruntime, onnxruntime-int8, "
                       r"compile"):
        engines.make_engine(lite0, ["pool"], "tensorrt")
    with pytest.raises(ValueError, match="needs at least one layer"):
        engines.make_engine(lite0, [], "torch")


def test_engines_reject_batches_the_transform_did_not_make(lite0):
    engine = engines.make_engine(lite0, ["pool"], "torch")
    with pytest.raises(ValueError, match=r"needs a \(B, 3, 224, 224\) batch .*got shape \(2, 3, 100, 100\)"):
        engine(torch.zeros(2, 3, 100, 100))
    with pytest.raises(ValueError, match="needs a float32 batch; got torch.uint8"):
        engine(torch.zeros(2, 3, 224, 224, dtype=torch.uint8))


# ------------------------------------------------------------------------------------------ export and cache


def test_cache_key_changes_with_everything_that_changes_the_file(lite0, monkeypatch):
    key = engines.onnx_cache_key(lite0, ["pool"])
    assert key == engines.onnx_cache_key(lite0, ["pool"]) and key.startswith("efficientnet_lite0-")
    other_weights = dataclasses.replace(lite0, weights_id="efficientnet-lite0:sha256:" + "0" * 64)
    variants = {
        "weights": engines.onnx_cache_key(other_weights, ["pool"]),
        "layer": engines.onnx_cache_key(lite0, ["head"]),
        "layer order": engines.onnx_cache_key(lite0, ["head", "pool"]),
        "other order": engines.onnx_cache_key(lite0, ["pool", "head"]),
        "input size": engines.onnx_cache_key(dataclasses.replace(lite0, input_size=256), ["pool"]),
        "opset": engines.onnx_cache_key(lite0, ["pool"], opset=engines.OPSET + 1),
    }
    assert engines.onnx_path(lite0, ["pool"]).name == f"{key}.onnx"
    monkeypatch.setattr(torch, "__version__", "99.0")
    variants["torch version"] = engines.onnx_cache_key(lite0, ["pool"])
    assert len({key, *variants.values()}) == 1 + len(variants), variants


def test_random_weights_are_keyed_by_their_values():
    torch.manual_seed(0)
    first = backbones.load("efficientnet_lite0", pretrained=False)
    torch.manual_seed(0)
    same = backbones.load("efficientnet_lite0", pretrained=False)
    torch.manual_seed(1)
    other = backbones.load("efficientnet_lite0", pretrained=False)
    assert first.weights_id == other.weights_id == "random-init"
    assert engines.onnx_cache_key(first, ["pool"]) == engines.onnx_cache_key(same, ["pool"])
    assert engines.onnx_cache_key(first, ["pool"]) != engines.onnx_cache_key(other, ["pool"])


def test_export_writes_the_file_and_a_sidecar_then_reuses_it(lite0, lite0_pool_export, export_calls):
    path = engines.onnx_path(lite0, ["pool"])
    assert path.parent == engines.config.cache_dir() / "onnx" and path.stem == engines.onnx_cache_key(lite0, ["pool"])
    assert path.read_bytes() == lite0_pool_export[".onnx"]
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["key"] == path.stem and record["exporter"] == "torchscript"
    assert record["sha256"] == sha256(path) and record["size"] == path.stat().st_size
    assert record["fields"] == engines.onnx_cache_fields(lite0, ["pool"])
    assert not list(path.parent.glob("*.tmp"))  # the temporary files were renamed or removed

    again = engines.make_engine(lite0, ["pool"], "onnxruntime")
    assert export_calls == [] and "cached export" in again.reason


@pytest.mark.parametrize("damage", ["truncated", "truncated, sidecar rewritten to match"])
def test_a_damaged_onnx_file_is_exported_again_never_used(damage, lite0, lite0_pool_export, chelsea, fresh_cache,
                                                          export_calls, caplog):
    path = engines.onnx_path(lite0, ["pool"])
    sidecar = path.with_suffix(".json")
    path.parent.mkdir()
    good = lite0_pool_export[".onnx"]
    path.write_bytes(good[: len(good) // 2])
    record = json.loads(lite0_pool_export[".json"])
    if damage == "truncated, sidecar rewritten to match":  # only ONNX Runtime's own check can catch this one
        record.update(sha256=sha256(path), size=path.stat().st_size)
    sidecar.write_text(json.dumps(record))

    with caplog.at_level("WARNING", logger="course_utils.engines"):
        engine = engines.make_engine(lite0, ["pool"], "onnxruntime")
    assert len(export_calls) == 1
    expected_reason = "checksum does not match" if damage == "truncated" else "Protobuf parsing failed"
    assert f"Cached ONNX file {path} is not usable" in caplog.text and expected_reason in caplog.text
    assert path.stat().st_size == len(good)
    assert json.loads(sidecar.read_text())["sha256"] == sha256(path)
    batch = photos(lite0, chelsea)
    expected = engines.make_engine(lite0, ["pool"], "torch")(batch)[0]
    assert np.abs(l2(engine(batch)[0]) - l2(expected)).max() < engines.TOLERANCE


def test_onnx_engine_is_refused_when_its_features_differ(lite0, fresh_cache, monkeypatch, export_calls):
    real_run = engines._run_session

    def skewed(session, batch):
        outputs = real_run(session, batch)
        for output in outputs:
            output[:, 0] += np.linalg.norm(output, axis=1)  # turns every feature vector by a wide angle
        return outputs

    monkeypatch.setattr(engines, "_run_session", skewed)
    with pytest.warns(engines.EngineFallbackWarning,
                      match=r"ONNX Runtime features differ from PyTorch eager by \S+ .*more than the tolerance 1e-04"):
        engine = engines.make_engine(lite0, ["pool"], "onnxruntime")
    assert engine.name == "torch" and engine.reason.startswith("torch: fallback, the onnxruntime engine failed")
    assert len(export_calls) == 1


def test_failed_exports_leave_nothing_behind_and_fall_back_to_torch(lite0, fresh_cache, monkeypatch):
    def half_written(module, example, target, n_outputs, dynamo):
        target.write_bytes(b"\x08\x07half an onnx file")
        raise RuntimeError(f"exporter {'dynamo' if dynamo else 'torchscript'} crashed")

    monkeypatch.setattr(engines, "_export", half_written)
    path = engines.onnx_path(lite0, ["pool"])
    with pytest.raises(engines.OnnxExportError,
                       match=r"torchscript: RuntimeError: exporter torchscript crashed; "
                             r"dynamo: RuntimeError: exporter dynamo crashed"):
        engines.export_onnx(lite0, ["pool"], path)
    assert list(path.parent.iterdir()) == []  # neither the half-written temp files nor a final file

    expected = "onnxruntime engine cannot be used .*exporter dynamo crashed"
    with pytest.warns(engines.EngineFallbackWarning, match=expected):
        engine = engines.make_engine(lite0, ["pool"], "auto", device="cpu")
    assert engine.name == "torch"


# --------------------------------------------------------------------------------------------- torch.compile


def test_compile_engine_runs_one_batch_size_only(lite0, monkeypatch):
    seen_batches = []

    def recording_compile(module, dynamic=None):
        assert dynamic is False

        def compiled(batch):
            seen_batches.append(len(batch))
            return module(batch)

        return compiled

    monkeypatch.setattr(torch, "compile", recording_compile)
    monkeypatch.setitem(engines.PREFERRED_BATCH, ("compile", "cpu"), 4)
    engine = engines.make_engine(lite0, ["pool", "stage4"], "compile")
    assert engine.name == "compile" and engine.reason.startswith("compile: torch.compile for batch 4")
    batch = torch.randn(6, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    got = engine(batch)
    expected = engines.make_engine(lite0, ["pool", "stage4"], "torch")(batch)
    assert [a.shape for a in got] == [(6, 1280), (6, 80)]
    for a, b in zip(got, expected, strict=True):
        assert np.abs(l2(a) - l2(b)).max() < engines.TOLERANCE
    assert set(seen_batches) == {4}  # the probe (3), then 6 = 4 + 2: always padded or split to 4


def test_compile_failure_falls_back_to_torch_with_a_warning(lite0, monkeypatch):
    def broken_compile(module, dynamic=None):
        raise RuntimeError("inductor needs a C++ compiler")

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(engines.EngineFallbackWarning, match=r"compile engine cannot be used .*needs a C\+\+ compiler"):
        engine = engines.make_engine(lite0, ["pool"], "compile")
    assert engine.name == "torch"


# ----------------------------------------------------------------------------------------------- benchmarking


def test_bench_forward_measures_every_engine_and_memory_format(lite0):
    threads_before = torch.get_num_threads()
    rows = engines.bench_forward(lite0, ["pool"], batch_sizes=(2,), seconds=0.03, threads=1)
    assert torch.get_num_threads() == threads_before  # bench_forward sets torch's threads only while measuring
    assert [(row["engine"], row["memory_format"], row["batch"]) for row in rows] == [
        ("torch", "contiguous", 2), ("torch", "channels_last", 2), ("onnxruntime", "contiguous", 2)]
    assert all(row["images_per_s"] > 0 and row["threads"] == 1 and row["device"] == "cpu" for row in rows)
    best = {name: max(r["images_per_s"] for r in rows if r["engine"] == name) for name in ("torch", "onnxruntime")}
    assert engines.speedup(rows) == pytest.approx(best["onnxruntime"] / best["torch"])
    with pytest.raises(ValueError, match=r"unknown engine\(s\) \['auto'\]"):
        engines.bench_forward(lite0, engines=["auto"])


def test_format_rows_puts_one_engine_and_format_per_line():
    rows = [{"engine": e, "memory_format": f, "batch": b, "images_per_s": v, "threads": 2}
            for e, f, b, v in [("torch", "contiguous", 1, 33.5), ("torch", "contiguous", 16, 61.7),
                               ("onnxruntime", "contiguous", 1, 159.7), ("onnxruntime", "contiguous", 16, 148.04)]]
    lines = engines.format_rows(rows).splitlines()
    assert lines[0].split() == ["engine", "memory", "format", "threads", "batch", "1", "batch", "16"]
    assert lines[1].split() == ["torch", "contiguous", "2", "33.5", "61.7"]
    assert lines[2].split() == ["onnxruntime", "contiguous", "2", "159.7", "148.0"]
    assert lines[3].startswith("(images per second")


def test_speedup_is_best_against_best():
    rows = [{"engine": "torch", "images_per_s": 40.0}, {"engine": "torch", "images_per_s": 60.0},
            {"engine": "onnxruntime", "images_per_s": 120.0}, {"engine": "onnxruntime", "images_per_s": 150.0}]
    assert engines.speedup(rows) == pytest.approx(2.5)
    assert engines.speedup(rows, engine="compile") is None

