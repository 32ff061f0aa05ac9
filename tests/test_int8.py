"""The INT8 CPU engine: quantised once and cached like the float32 export (sidecar, SHA-256), close to float32 but
not equal, so its features get their own cache identity; it never falls back to float32 silently."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from conftest import random_photo

from course_utils import engines, features
from course_utils.datasets.images import sha256_file

pytestmark = pytest.mark.slow  # quantising Lite0 takes 5-20 s on a 2-core CPU (once per test session)


@pytest.fixture(scope="module")
def int8(lite0):
    return engines.make_engine(lite0, ["pool"], engines.INT8)


def l2(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_int8_engine_is_close_to_float32_on_photographs_but_not_equal(int8, lite0):
    assert int8.name == "onnxruntime-int8" and engines.INT8 in engines.ENGINES
    assert int8.min_cosine >= engines.INT8_MIN_COSINE
    views = engines.calibration_batch(lite0, 6, seed=2)  # photographs neither calibrated nor checked on
    got = int8(views)[0]
    expected = engines.make_engine(lite0, ["pool"], "onnxruntime")(views)[0]
    assert got.shape == expected.shape == (6, 1280) and got.dtype == np.float32
    cosine = (l2(got.astype(np.float64)) * l2(expected.astype(np.float64))).sum(axis=1)
    assert cosine.min() > 0.95
    assert np.abs(l2(got) - l2(expected)).max() > engines.TOLERANCE  # quantised: not the float32 numbers


def test_the_quantised_file_is_cached_with_a_checksummed_sidecar_and_reused(int8, lite0, monkeypatch):
    record = json.loads(int8.onnx_path.with_suffix(".json").read_text())
    assert record["sha256"] == sha256_file(int8.onnx_path) and record["size"] == int8.onnx_path.stat().st_size
    assert record["fields"]["int8"] == engines.INT8_RECIPE and record["fields"]["numerics"] == int8.numerics
    monkeypatch.setattr(engines, "quantize_int8", lambda *args: pytest.fail("quantised again"))
    again = engines.make_engine(lite0, ["pool"], engines.INT8)
    assert "cached quantisation" in again.reason and again.onnx_path == int8.onnx_path


def test_a_damaged_quantised_file_is_quantised_again(int8, lite0):
    data = bytearray(int8.onnx_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    int8.onnx_path.write_bytes(bytes(data))
    again = engines.make_engine(lite0, ["pool"], engines.INT8)
    assert "quantised in" in again.reason
    assert json.loads(again.onnx_path.with_suffix(".json").read_text())["sha256"] == sha256_file(again.onnx_path)


def test_only_the_int8_engine_changes_the_feature_cache_key():
    assert [engines.feature_numerics(name) for name in ("auto", "torch", "onnxruntime", "compile")] == [None] * 4
    numerics = engines.feature_numerics(engines.INT8)
    assert numerics.startswith("int8:") and len(numerics) == len("int8:") + 16


def test_int8_features_are_cached_apart_from_float32_ones(int8, lite0, tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"photo{i}.jpg")
        random_photo(i, (320, 240)).save(paths[-1], quality=92)
    cache = tmp_path / "cache"
    fp32 = features.extract(paths, lite0, cache=cache, engine="onnxruntime", progress=False)
    torch_run = features.extract(paths, lite0, cache=cache, engine="torch", progress=False)
    quantised = features.extract(paths, lite0, cache=cache, engine=engines.INT8, progress=False)
    assert torch_run.from_cache and torch_run.cache_path == fp32.cache_path  # float32 engines share an entry
    assert not quantised.from_cache and quantised.cache_path != fp32.cache_path
    key = json.loads((quantised.cache_path / "key.json").read_text())
    assert key["numerics"] == int8.numerics
    assert "numerics" not in json.loads((fp32.cache_path / "key.json").read_text())
    assert features.extract(paths, lite0, cache=cache, engine=engines.INT8, progress=False).from_cache


def test_int8_refuses_a_gpu_and_a_missing_onnxruntime_instead_of_falling_back(lite0, monkeypatch):
    with pytest.raises(engines.EngineUnavailableError, match=r"runs on the CPU only; on cuda use engine='auto'"):
        engines.make_engine(lite0, ["pool"], engines.INT8, device="cuda")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes "import onnxruntime" raise ImportError
    with pytest.raises(engines.EngineUnavailableError, match=r"needs the onnxruntime package, which is not installed"):
        engines.make_engine(lite0, ["pool"], engines.INT8)
    assert engines.INT8 not in engines.available_engines("cpu")


def test_int8_far_from_float32_is_refused(lite0, monkeypatch, int8):
    monkeypatch.setattr(engines, "INT8_MIN_COSINE", 1.01)  # no real quantisation can pass this
    with pytest.raises(engines.EngineMismatchError, match=r"INT8 features are too far from float32 ones .* below 1.01"):
        engines.make_engine(lite0, ["pool"], engines.INT8)


def test_calibration_views_are_deterministic_photographs(lite0):
    a, b = engines.calibration_batch(lite0, 4), engines.calibration_batch(lite0, 4)
    assert a.shape == (4, 3, 224, 224) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, engines.calibration_batch(lite0, 4, seed=1))
