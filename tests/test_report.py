"""Result records and the report files: JSON round trip, tables, plots, atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from course_utils import report
from course_utils.report import ResultRecord


def _records():
    return [
        ResultRecord("flowers102", "fine-grained", "CNN-SVM", "efficientnet_lite0", "mean class accuracy", 89.83,
                     paper=74.7, layer="pool", views="whole", settings={"C": 2.0}, best_prior=80.7),
        ResultRecord("ukbench2000", "retrieval", "CNN", "efficientnet_lite0", "N-S score (0-4)", 3.716),
    ]


def test_write_report_round_trips_and_names_everything(tmp_path):
    paths = report.write_report(_records(), tmp_path, title="T", meta={"date": "2026-11-25", "profile": "demo"})
    payload = json.loads(paths["json"].read_text())
    assert payload["meta"]["profile"] == "demo"
    assert [r["dataset"] for r in payload["results"]] == ["flowers102", "ukbench2000"]
    for key in ("dataset", "task", "method", "backbone", "metric", "value", "paper", "best_prior"):
        assert key in payload["results"][0]
    assert report.read_results(paths["json"]) == _records()
    markdown = paths["markdown"].read_text()
    assert "| flowers102 | fine-grained | CNN-SVM | efficientnet_lite0 | pool | whole | mean class accuracy | " \
           "**89.8** | 74.7 | 80.7 | C=2.0 |" in markdown
    assert "| **3.72** | – | – |" in markdown  # N-S scores keep two decimals, no paper number, no best prior
    assert paths["plot"].stat().st_size > 1000 and "![paper_vs_ours](paper_vs_ours.png)" in markdown
    assert not list(tmp_path.glob(".*.tmp"))
    page = paths["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>T</title>" in page
    assert "<td>flowers102</td>" in page and "<strong>89.8</strong>" in page  # the table, rendered
    assert '<img src="paper_vs_ours.png" alt="paper_vs_ours"' in page  # plots by relative link


def test_console_table_lines_up():
    lines = report.format_table(_records()).splitlines()
    assert lines[0].split() == ["dataset", "task", "method", "backbone", "metric", "ours", "paper"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].endswith("89.8  74.7") and lines[3].endswith("3.72  –")


def test_no_plot_without_paper_numbers(tmp_path):
    assert report.plot_paper_vs_ours(_records()[1:], tmp_path / "x.png") is None


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    from course_utils.datasets import images

    target = tmp_path / "results.json"
    images.write_text_atomic(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(images.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        images.write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_atomic_write_gives_the_umask_permissions_not_0600(tmp_path):
    from course_utils.datasets import images

    previous = os.umask(0o022)
    try:
        target = images.write_text_atomic(tmp_path / "shared.json", "{}")
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == 0o644


def test_environment_info_records_versions():
    info = report.environment_info(seed=3)
    assert info["seed"] == 3 and info["torch"] and info["scikit-learn"] and "course_utils" in info


def test_writing_a_report_leaves_the_matplotlib_backend_alone(tmp_path):
    # A notebook's inline backend must survive a report written from it (here "svg" stands for it).
    import matplotlib
    import matplotlib.pyplot as plt

    previous = matplotlib.get_backend()
    plt.switch_backend("svg")
    try:
        paths = report.write_report(_records(), tmp_path, title="T", meta={})
        assert matplotlib.get_backend() == "svg"
        assert paths["plot"].read_bytes().startswith(b"\x89PNG")
        assert plt.get_fignums() == []  # nothing left open in pyplot
    finally:
        plt.switch_backend(previous)


def test_undecodable_file_names_are_shown_with_their_bytes_escaped(tmp_path):
    name = "cat/caf\udce9.jpg"  # how Python holds the Latin-1 byte 0xE9 of a file name that is not UTF-8
    assert report.printable(name) == "cat/caf\\xe9.jpg"
    paths = report.write_report(_records(), tmp_path, title="T", meta={"odd": name}, sections=[f"skipped {name}"])
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "skipped cat/caf\\xe9.jpg" in text
    assert json.loads(paths["json"].read_text())["meta"]["odd"] == name  # JSON keeps the exact name


def test_records_become_a_sortable_table():
    frame = report.to_frame(_records())
    assert list(frame["dataset"]) == ["flowers102", "ukbench2000"]
    assert frame.loc[0, "value"] == 89.83 and frame.loc[0, "paper"] == 74.7
    assert "settings" not in frame.columns and {"method", "backbone", "metric", "layer"} <= set(frame.columns)
    assert list(frame.sort_values("value")["dataset"]) == ["ukbench2000", "flowers102"]
