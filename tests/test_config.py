"""Where the course keeps its cache and its downloads: the platform's folders unless the user says otherwise."""

from __future__ import annotations

from pathlib import Path

from course_utils import config


def test_cache_and_data_follow_the_xdg_folders_and_stay_apart(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_CACHE_DIR", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    assert config.cache_dir() == tmp_path / "xdg-cache" / "off-the-shelf"
    assert config.data_dir() == tmp_path / "xdg-data" / "off-the-shelf" / "datasets"
    assert not config.data_dir().is_relative_to(config.cache_dir())  # deleting the cache keeps the downloads


def test_without_xdg_variables_the_home_folders_are_used(tmp_path, monkeypatch):
    for name in ("COURSE_CACHE_DIR", "COURSE_DATA_DIR", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.cache_dir() == Path(tmp_path) / ".cache" / "off-the-shelf"
    assert config.data_dir() == Path(tmp_path) / ".local" / "share" / "off-the-shelf" / "datasets"


def test_the_course_variables_win(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "big-disk"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ignored"))
    assert config.cache_dir() == tmp_path / "mine" and config.data_dir() == tmp_path / "big-disk"
