"""One typed record per dataset (``datasets.specs.DatasetSpec``): every fact code reads about a dataset is there, and
a new benchmark is its record plus its loader, nothing else."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from course_utils import claims, config, metrics, paper, reproduce
from course_utils.datasets import DatasetRecord, available, loader, specs


def test_every_profile_dataset_has_a_record_with_a_metric_and_a_loader():
    for profile in config.PROFILES:
        names = specs.in_profile(profile)
        assert names, profile
        for name in names:
            spec = specs.get(name)
            assert isinstance(spec.metric, metrics.Metric) and spec.metric in metrics.METRICS.values(), name
            assert callable(loader(name)), name
    assert specs.in_profile("demo") == ("demo_classes", "demo_faces", "demo_retrieval", "flowers17", "dtd10",
                                        "ukbench2000")
    assert specs.in_profile("full")[-3:] == ("sculptures6k", "holidays", "ukbench")
    with pytest.raises(ValueError, match="Unknown profile 'nosuch'"):
        specs.in_profile("nosuch")


def test_the_records_facts_agree_with_each_other_and_with_the_papers_tables():
    papers_sets = {row.dataset for row in paper.RESULTS}
    for spec in specs.SPECS.values():
        assert spec.metric.retrieval == (spec.task_group == "retrieval"), spec.name
        assert (spec.search is not None) == (spec.task_group == "retrieval"), spec.name
        if spec.whitening_source is not None:  # learned on another dataset, never the searched one
            assert spec.whitening_source in specs.SPECS and spec.whitening_source != spec.name
        if spec.paper is not None:
            assert spec.paper.name in papers_sets, spec.name
    assert specs.get("ukbench2000").paper.name == "ukbench" and specs.get("ukbench2000").metric is metrics.NS_SCORE
    assert specs.get("uiuc_ayahoo").paper.C == 0.2 and specs.get("flowers102").paper.C == 2.0
    positions = sorted(s.paper.figure1.position for s in specs.SPECS.values() if s.paper and s.paper.figure1)
    assert positions == list(range(11))  # Figure 1's eleven bar groups, each once
    assert [row.task for row in claims.paper_claim()][4:6] == ["Human attributes (H3D)", "Object attributes (UIUC)"]


def test_a_spec_with_an_unknown_search_or_profile_is_refused():
    with pytest.raises(ValueError, match=r"Dataset spec 'x': search 'radial' is not one of .*profile 'nightly' "):
        specs.DatasetSpec(name="x", loader="demo:demo_classes", title="", task="", kind="builtin", folder="",
                          images="", size_on_disk="", license="", protocol="", scoring="", paper_table="",
                          metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="radial", profiles=("nightly",))


def test_a_record_takes_a_metric_never_text():
    record = DatasetRecord("toy", "multiclass", ".", ["a.jpg"], labels=np.array([0]))
    assert record.metric is metrics.MEAN_CLASS_ACCURACY  # the task's default
    assert DatasetRecord("toy", "retrieval", ".", []).metric is metrics.RETRIEVAL_MAP
    with pytest.raises(TypeError, match="metric must be a course_utils.metrics.Metric .* not 'mean AUC'"):
        DatasetRecord("toy", "attributes", ".", [], metric="mean AUC")


@pytest.fixture
def toy_benchmark(monkeypatch):
    """A new benchmark, added the way the course asks: one record (in the demo profile) and one loader.

    The loader serves the demo faces under a new name, so their features come from the cache."""
    from course_utils.datasets.demo import demo_faces

    def toy_faces() -> DatasetRecord:
        faces = demo_faces()
        return DatasetRecord("toy_faces", faces.task, faces.root, faces.paths, labels=faces.labels,
                             class_names=faces.class_names, split=faces.split, metric=specs.get("toy_faces").metric,
                             protocol="faces under a new name", paper_table="none")

    module = types.ModuleType("course_utils.datasets.toy_faces")
    module.toy_faces = toy_faces
    monkeypatch.setitem(sys.modules, module.__name__, module)
    spec = specs.DatasetSpec(
        name="toy_faces", loader="toy_faces:toy_faces", title="Toy faces", task="one attribute", kind="builtin",
        folder="", images="200", size_on_disk="none", license="test", protocol="test", scoring="AUC", paper_table="none",
        metric=metrics.MEAN_AUC, task_group="attributes", profiles=("demo",),
    )
    monkeypatch.setitem(specs.SPECS, "toy_faces", spec)
    return spec


def test_a_new_benchmark_is_one_record_and_one_loader(toy_benchmark, tmp_path):
    assert "toy_faces" in available() and specs.in_profile("demo")[-1] == "toy_faces"
    records = reproduce.run(["toy_faces"], ["efficientnet_lite0"], out=tmp_path, tasks="attributes", views="whole",
                            ablations=False, engine="torch", progress=False)
    assert [(r.dataset, r.method, r.metric, r.data) for r in records] == [
        ("toy_faces", "CNN-SVM", "mean AUC", "embedded demo set")]
    assert records[0].paper is None and records[0].settings["C_selection"] == "cv"  # no paper entry: C by CV
    with pytest.raises(RuntimeError, match="none of them has a task among --tasks"):  # its task group is its record's
        reproduce.run(["toy_faces"], ["efficientnet_lite0"], out=tmp_path / "r", tasks="retrieval", progress=False)


def test_run_as_a_library_returns_the_rows_the_command_writes(tmp_path):
    from course_utils.__main__ import main

    records = reproduce.run(["demo_faces"], "efficientnet_lite0", out=tmp_path / "lib", views="whole",
                            ablations=False, engine="torch", progress=False)
    assert main(["reproduce", "--dataset", "demo_faces", "--out", str(tmp_path / "cli"), "--views", "whole",
                 "--no-ablations", "--engine", "torch", "--no-progress"]) == 0
    written = json.loads((tmp_path / "cli" / "results.json").read_text())["results"]

    def comparable(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "settings"} | {"C": row["settings"]["C"]} for row in rows]

    assert comparable([r.to_dict() for r in records]) == comparable(written)
    assert [r["method"] for r in written] == ["CNN-SVM"] and written[0]["metric"] == "mean AUC"
    report = (tmp_path / "lib" / "report.md").read_text()
    assert "# Reproducing CNN Features off-the-shelf (demo_faces)" in report
