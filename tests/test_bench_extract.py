"""``bench extract``: the photos it writes, and one small run end to end (every measurement, the RESULT line)."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from course_utils import augment
from course_utils.__main__ import main
from course_utils.bench import extract as bench


def test_photos_are_jpeg_crops_and_the_surplus_are_copies(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "DISTINCT_PHOTOS", 2)
    paths = bench.write_photos(tmp_path, 4)
    assert [p.name for p in paths] == ["photo00000.jpg", "photo00001.jpg", "photo00002.jpg", "photo00003.jpg"]
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG" and image.size == bench.PHOTO_SIZE
    data = [p.read_bytes() for p in paths]
    assert data[0] != data[1] and data[2] == data[0] and data[3] == data[1]


def test_batched_decoding_rate_counts_every_file(tmp_path, monkeypatch):
    paths = bench.write_photos(tmp_path, 5)
    clock = iter([10.0, 12.5])  # the two readings around the timed loop: 2.5 s
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    monkeypatch.setattr(bench, "NVJPEG_BATCH", 2)
    assert bench.nvjpeg_images_per_second(paths, 32, "cpu", limit=4) == pytest.approx(4 / 2.5)


def test_big_photos_are_distinct_12_megapixel_jpegs(tmp_path):
    paths = bench.write_big_photos(tmp_path, 2)
    assert [p.name for p in paths] == ["big00000.jpg", "big00001.jpg"]
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG" and image.size == (4000, 3000) == bench.BIG_PHOTO_SIZE
    assert paths[0].read_bytes() != paths[1].read_bytes()


def test_big_photo_rate_counts_every_file_and_runs_the_engine_on_every_view(tmp_path, monkeypatch, lite0):
    paths = bench.write_big_photos(tmp_path, 3)
    batches = []

    def engine(pixels):
        batches.append(tuple(pixels.shape))
        return [pixels.flatten(1)[:, :4].numpy()]

    engine.device = "cpu"
    clock = iter([10.0, 14.0])  # the two readings around the timed loop: 4 s
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    spec = augment.get_views("mirror")
    assert bench.loader_images_per_second(paths, lite0, spec, engine, 4, True) == pytest.approx(3 / 4)
    assert batches == [(4, 3, 224, 224), (2, 3, 224, 224)]  # 2 images of 2 views, then the last image's 2 views


def _line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


def _rate(output: str, label: str) -> float:
    return float(re.search(rf"^{re.escape(label)}: ([0-9.]+) images/s", output, re.MULTILINE).group(1))


@pytest.mark.slow
def test_a_small_run_prints_each_measurement_and_the_result_line(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["bench", "extract", "--backbone", "efficientnet_lite0", "--random", "--images", "4",
                 "--naive-images", "2", "--views", "2", "--rounds", "1", "--batch-sizes", "2", "--seconds", "0.2",
                 "--big-images", "1", "--device", "cpu"])
    output = capfd.readouterr().out
    assert code == 0
    assert "efficientnet_lite0 (random weights), layer pool, 4 JPEG images 500x375, 2 view(s) (mirror)" in output
    assert "device cpu" in output
    naive, pipeline = _rate(output, "(a) naive loop"), _rate(output, "(b) pipeline")
    forward, decoding = _rate(output, "(c) forward bound"), _rate(output, "(d) decoding alone")
    assert min(naive, pipeline, forward, decoding) > 0
    per_engine = dict(re.findall(r"(onnxruntime|torch) ([0-9.]+) images/s", _line(output, "    best forward per engine")))
    assert set(per_engine) == {"onnxruntime", "torch"}  # onnxruntime is a dependency: both run on a CPU
    # the bound is the best engine's best figure
    assert forward == pytest.approx(max(map(float, per_engine.values())), rel=0.01, abs=0.01)
    int8, fp32 = map(float, re.search(r"^\(f\) INT8 forward: ([0-9.]+) images/s against ONNX Runtime float32 "
                                      r"([0-9.]+) at the same batch 2", output, re.MULTILINE).groups())
    reduced, full = map(float, re.search(r"^\(g\) big photos \(1 JPEGs 4000x3000, loader and onnxruntime engine\): "
                                         r"decoded reduced ([0-9.]+) images/s, in full ([0-9.]+)", output,
                                         re.MULTILINE).groups())
    last = output.strip().splitlines()[-1]
    match = re.fullmatch(r"RESULT pipeline_vs_naive=([0-9.]+) pipeline_vs_forward=([0-9.]+) ort_vs_torch=([0-9.]+) "
                         r"int8_vs_fp32=([0-9.]+) bigphoto_vs_full=([0-9.]+) peak_rss_mb=(\d+)", last)
    assert match, last
    assert float(match.group(1)) == pytest.approx(pipeline / naive, rel=0.02, abs=0.01)
    assert float(match.group(2)) == pytest.approx(pipeline / forward, rel=0.02, abs=0.01)
    ort, torch = float(per_engine["onnxruntime"]), float(per_engine["torch"])
    assert float(match.group(3)) == pytest.approx(ort / torch, rel=0.02, abs=0.01)
    assert float(match.group(4)) == pytest.approx(int8 / fp32, rel=0.02, abs=0.01)
    assert float(match.group(5)) == pytest.approx(reduced / full, rel=0.02, abs=0.01)
    assert 100 < int(match.group(6)) < 8_000  # a process holding torch and one small network


def test_ort_vs_torch_divides_the_best_figures_of_the_two_engines():
    rows = [{"engine": "torch", "images_per_s": 40.0}, {"engine": "torch", "images_per_s": 64.0},
            {"engine": "onnxruntime", "images_per_s": 96.0}, {"engine": "onnxruntime", "images_per_s": 80.0}]
    best = bench.best_per_engine(rows, n_views=16)  # view-forwards/s -> images/s
    assert best == {"torch": 4.0, "onnxruntime": 6.0}
    assert bench.engine_ratio(best) == pytest.approx(1.5)
    assert bench.engine_ratio({"torch": 4.0}) is None  # onnxruntime did not run: the RESULT line says n/a


@pytest.mark.parametrize(("argv", "message"), [
    (["--naive-images", "0"], "argument --naive-images: must be at least 1; got 0"),
    (["--rounds", "-1"], "argument --rounds: must be at least 1; got -1"),
    (["--batch-sizes", "8,0"], "argument --batch-sizes: '8,0': must be at least 1; got 0"),
    (["--engine", "ort"], "argument --engine: unknown engine 'ort'; choose one of: auto, torch, onnxruntime, "
                            "onnxruntime-int8, compile"),
])
def test_bad_values_are_refused_in_one_line(argv, message, capsys):
    assert main(["bench", "extract", "--images", "3", *argv, "--device", "cpu"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"python -m course_utils bench extract: error: {message} (python -m course_utils bench extract --help lists "
        "the options)"]
