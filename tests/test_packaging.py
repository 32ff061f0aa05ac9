"""The files a public course is expected to have, and that they agree with each other."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

import course_utils

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_licence_file_holds_the_declared_licence():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_the_version_lives_in_one_place():
    assert "version" not in PYPROJECT["project"] and PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "course_utils.__version__"}
    assert importlib.metadata.version("course-utils") == course_utils.__version__
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["version"] == course_utils.__version__


def test_the_citation_names_the_paper():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    paper = citation["preferred-citation"]
    assert paper["title"] == "CNN Features off-the-shelf: an Astounding Baseline for Recognition"
    assert [a["family-names"] for a in paper["authors"]] == ["Sharif Razavian", "Azizpour", "Sullivan", "Carlsson"]
    assert paper["year"] == 2014
    assert "@inproceedings{razavian2014cnn," in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_console_script_and_the_type_marker_are_installed():
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts["off-the-shelf"] == "course_utils.__main__:main"
    assert (Path(course_utils.__file__).parent / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["course_utils"]


def test_optional_dependencies_are_grouped_by_purpose():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"test", "notebooks", "browser", "lint", "dev"} <= set(extras)
    assert extras["dev"] == ["course-utils[test,notebooks,browser,lint]"]
    core = " ".join(PYPROJECT["project"]["dependencies"])
    assert "psutil" not in core and "threadpoolctl" in core  # declared where used: tests/browser, viz


def test_pre_commit_runs_ruff_and_strips_notebooks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks["ruff"]["entry"] == "ruff check"
    assert hooks["nbstripout"]["files"] == r"^notebooks/.*\.ipynb$"
    assert "lint" in (ROOT / "Makefile").read_text(encoding="utf-8").split("\ntest:")[1].split("\n")[0]
