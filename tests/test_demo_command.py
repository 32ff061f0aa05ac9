"""``python -m course_utils demo``: reproduce's library function with the demo's own rows (``demo.DEMO``)."""

from __future__ import annotations

import json

from course_utils import demo, reproduce
from course_utils.__main__ import main


def test_quick_demo_writes_the_rows_the_library_returns_and_recomputes_every_block(tmp_path):
    assert main(["demo", "--quick", "--engine", "torch", "--no-progress", "--out", str(tmp_path / "cli")]) == 0
    written = json.loads((tmp_path / "cli" / "results.json").read_text())
    rows = [(r["dataset"], r["method"], r["metric"], r["views"], r["data"]) for r in written["results"]]
    assert rows == [
        ("demo_classes", "CNN-SVM", "mean class accuracy", "whole", "embedded demo set"),
        ("demo_faces", "CNN-SVM", "mean AUC", "whole", "embedded demo set"),
        ("demo_retrieval", "CNN (global)", "mAP", "whole", "embedded demo set"),
    ]
    assert all(r["paper"] is None and r["settings"].get("C_selection", "cv") == "cv" for r in written["results"])
    assert written["meta"]["command"] == "demo --quick" and "aug_power" not in written["meta"]
    assert not (tmp_path / "cli" / "blocks").exists()  # a demo recomputes: it checks that the pipeline works
    report = (tmp_path / "cli" / "report.md").read_text()
    assert report.startswith("# Off-the-Shelf demo\n") and demo.INTRO in report
    assert "## The paper's two claims" not in report
    assert "![demo_classes_confusion](demo_classes_confusion.png)" in report
    assert "![demo_retrieval_gallery](demo_retrieval_gallery.png)" in report

    records = reproduce.run(list(demo.EMBEDDED), ["efficientnet_lite0"], out=tmp_path / "lib", views="whole",
                            engine="torch", progress=False, recipe=demo.DEMO)
    assert [r.to_dict() for r in records] == written["results"]


def test_the_demo_sets_come_from_the_records_of_the_demo_profile():
    assert demo.EMBEDDED == ("demo_classes", "demo_faces", "demo_retrieval")
    assert demo.SHARED == ("flowers17", "dtd10", "ukbench2000")
    assert demo._dataset_names(quick=True) == list(demo.EMBEDDED)
