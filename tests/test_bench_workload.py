"""``bench workload``: the full profile's datasets, the projection arithmetic, and one tiny run end to end."""

from __future__ import annotations

import argparse
import re

import pytest

from course_utils import reproduce
from course_utils.bench import workload


def test_the_workload_covers_exactly_the_full_profiles_datasets():
    assert [dataset.name for dataset in workload.WORKLOAD] == list(reproduce.FULL_DATASETS)
    assert all(dataset.kind in workload.PASSES and dataset.images > 0 for dataset in workload.WORKLOAD)
    assert [workload.view_spec(name).n_views for name in ("whole", "paper16", "spatial4")] == [1, 16, 30]


def test_projection_multiplies_images_by_seconds_and_scales_the_h200_rates_by_decoding(monkeypatch):
    monkeypatch.setattr(workload, "WORKLOAD", (
        workload.Dataset("a", 100, (500, 375), "classification"),
        workload.Dataset("b", 10, (1024, 768), "spatial"),
    ))
    timings = {((500, 375), "whole"): (0.1, 0.01), ((500, 375), "paper16"): (1.0, 0.05),
               ((1024, 768), "whole"): (0.2, 0.02), ((1024, 768), "spatial4"): (3.0, 0.2)}
    reference = {"whole": 0.01, "paper16": 0.05, "spatial4": 0.1}
    rows, total, h200 = workload.project(timings, reference, "resnet50")
    a_h200 = 100 * (1 / 4020 + 1 / 397)  # the reference size: the H200 rates as measured
    b_h200 = 10 * (1 / 4020 * 2 + 1 / 397 * 30 / 16 * 2)  # twice the decoding cost; 30 views from the 16-view rate
    assert rows == [("a", pytest.approx(110.0), pytest.approx(a_h200)), ("b", pytest.approx(32.0), pytest.approx(b_h200))]
    assert total == pytest.approx(142.0) and h200 == pytest.approx(a_h200 + b_h200)
    # a backbone never measured on the H200 with 16 views has no projection, rather than a made-up one
    assert workload.project(timings, reference, "vgg16")[2] is None


@pytest.mark.parametrize(("text", "message"), [("", "needs at least one backbone name"),
                                             ("resnet50,resnet5", "unknown backbone 'resnet5'")])
def test_bad_backbone_lists_are_refused_naming_the_problem(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        workload._backbone_list(text)


@pytest.mark.slow
def test_a_tiny_run_prints_the_projection_and_the_result_line(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(workload, "WORKLOAD", (workload.Dataset("flowers102", 8_189, (500, 375), "classification"),))
    parser = argparse.ArgumentParser()
    workload.add_arguments(parser)
    args = parser.parse_args(["--backbones", "efficientnet_lite0", "--images", "1", "--device", "cpu"])
    assert workload.run(args) == 0
    output = capfd.readouterr().out
    whole, views16 = (float(re.search(rf"efficientnet_lite0 500x375 {name}: ([0-9.]+) images/s", output).group(1))
                      for name in ("whole", "paper16"))
    minutes = float(re.search(r"^  flowers102 +([0-9.]+) min", output, re.MULTILINE).group(1))
    assert minutes == pytest.approx(8_189 * (1 / whole + 1 / views16) / 60, rel=0.02, abs=0.1)
    assert "no earlier H200 measurement of efficientnet_lite0 with 16 views" in output
    assert re.fullmatch(r"RESULT projected_minutes_efficientnet_lite0=[0-9.]+ h200_projected_minutes_efficientnet_lite0="
                        r"n/a", output.strip().splitlines()[-1])
