"""Checks that need a CUDA GPU (skipped without one): extraction on the card agrees with the CPU, with and without
decoding workers, and the engines and benchmark pick what the GPU can run."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from course_utils import backbones, engines, features
from course_utils.bench.extract import write_photos

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

BFLOAT16_TOLERANCE = 3e-2  # L2-normalised features under bfloat16 autocast against float32 on the CPU


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("gpu-photos"), 24)


@pytest.fixture(scope="module")
def networks():
    """The same random-weight EfficientNet-Lite0 on the CPU and on the GPU."""
    torch.manual_seed(0)
    cpu = backbones.load("efficientnet_lite0", pretrained=False)
    gpu = dataclasses.replace(cpu, model=copy.deepcopy(cpu.model).to("cuda"))
    return cpu, gpu


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_gpu_features_match_the_cpu(networks, photos):
    cpu, gpu = networks
    on_cpu = features.extract(photos, cpu, "pool", "paper16", engine="torch", cache=False, progress=False)
    on_gpu = features.extract(photos, gpu, "pool", "paper16", cache=False, progress=False)
    assert on_gpu["pool"].shape == on_cpu["pool"].shape == (24, 16, 1280)
    assert on_gpu["pool"].dtype == np.float32
    difference = np.abs(_unit(on_gpu["pool"]) - _unit(on_cpu["pool"])).max()
    assert difference < BFLOAT16_TOLERANCE, difference


def test_normalising_on_the_gpu_gives_the_cpus_bits(networks, photos):
    from PIL import Image

    transform = networks[0].transform
    pixels = torch.stack([transform.resize(Image.open(path)) for path in photos[:4]])
    on_gpu = transform.standardize(pixels.to("cuda"))
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    assert torch.equal(on_gpu.cpu(), transform.standardize(pixels))


def test_gpu_decoding_workers_give_the_same_rows(networks, photos):
    _, gpu = networks
    inline = features.extract(photos, gpu, "pool", "mirror", num_workers=0, batch_size=16, cache=False, progress=False)
    workers = features.extract(photos, gpu, "pool", "mirror", num_workers=3, batch_size=16, cache=False,
                               progress=False)
    np.testing.assert_allclose(workers["pool"], inline["pool"], atol=1e-2, rtol=1e-2)


def test_auto_engine_on_the_gpu_is_torch_under_bfloat16(networks):
    _, gpu = networks
    engine = engines.make_engine(gpu, ["pool"], "auto")
    assert engine.name == "torch" and engine.device.startswith("cuda")
    assert "bfloat16" in engine.reason
    assert engine.preferred_batch_size == engines.GPU_BATCH
    rows = engine(torch.randn(4, 3, 224, 224, device="cuda"))
    assert rows[0].shape == (4, 1280) and rows[0].dtype == np.float32


def test_forward_benchmark_on_the_gpu_runs_only_engines_that_use_it(networks):
    _, gpu = networks
    rows = engines.bench_forward(gpu, ["pool"], batch_sizes=[8], seconds=0.3)
    names = {row["engine"] for row in rows}
    assert "torch" in names
    assert all(row["device"].startswith("cuda") for row in rows)
    assert ("onnxruntime" in names) == ("onnxruntime" in engines.available_engines("cuda"))
