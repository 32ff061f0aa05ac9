"""The dataset downloader against a local HTTP server on 127.0.0.1: resume, checksums, safe extraction, errors, CLI.

No test touches the internet: every URL points at a ``ThreadingHTTPServer`` started here on a random port, which
serves in-memory files, honours (or, on request, ignores) ``Range``, and can cut its first response half-way.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from course_utils.datasets import download as dl
from course_utils.datasets.specs import SPECS, Artifact, CountCheck, DatasetSpec, shared_copy
from course_utils.metrics import MEAN_CLASS_ACCURACY

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes: several read chunks, not a multiple of the chunk size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if wanted and self.path not in srv.ignore_range:
            start = int(wanted.split("=", 1)[1].split("-", 1)[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.path in srv.drop_once:
            srv.drop_once.discard(self.path)
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class LocalServer:
    """Files served from memory at ``url(path)``; ``requests`` logs ``(path, Range header)``."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.files, self.httpd.requests = {}, []
        self.httpd.drop_once, self.httpd.ignore_range = set(), set()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, body: bytes) -> str:
        self.httpd.files[path] = body
        return self.url(path)

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = LocalServer()
    yield srv
    srv.close()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz", links: dict[str, str] | None = None) -> bytes:
    """A tar archive of ``members`` (name -> content) plus symbolic ``links`` (name -> target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_spec(artifacts, checks=(), name="tiny") -> DatasetSpec:
    return DatasetSpec(
        name=name, title="Tiny test set", task="test", kind="download", folder=name, images="3", size_on_disk="1 KB",
        license="test", protocol="test", scoring="test", paper_table="none", metric=MEAN_CLASS_ACCURACY,
        loader="demo:demo_classes", artifacts=tuple(artifacts),
        checks=tuple(checks),
    )


# --- download_file -----------------------------------------------------------------------------------------------


def test_resumes_after_a_dropped_connection(server, tmp_path):
    url = server.serve("/big.bin", PAYLOAD)
    server.httpd.drop_once.add("/big.bin")
    dest = dl.download_file(url, tmp_path / "big.bin", progress=False, retry_wait=0)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "big.bin.part").exists()
    assert server.requests == [("/big.bin", None), ("/big.bin", f"bytes={len(PAYLOAD) // 2}-")]


def test_resumes_a_part_file_left_by_an_earlier_run(server, tmp_path):
    url = server.serve("/big.bin", PAYLOAD)
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:1000])
    dl.download_file(url, tmp_path / "big.bin", progress=False)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/big.bin", "bytes=1000-")]


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    url = server.serve("/big.bin", PAYLOAD)
    server.httpd.ignore_range.add("/big.bin")
    (tmp_path / "big.bin.part").write_bytes(b"stale bytes that must not stay in front")
    dl.download_file(url, tmp_path / "big.bin", progress=False)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_is_kept(server, tmp_path):
    url = server.serve("/big.bin", PAYLOAD)
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD)
    dl.download_file(url, tmp_path / "big.bin", progress=False)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD and server.requests == [("/big.bin", f"bytes={len(PAYLOAD)}-")]


def test_connection_that_keeps_dropping_gives_up_and_keeps_the_part(server, tmp_path):
    url = server.serve("/big.bin", PAYLOAD)

    class AlwaysDrop(set):
        def __contains__(self, item):
            return True

        def discard(self, item):
            pass

    server.httpd.drop_once = AlwaysDrop()
    with pytest.raises(dl.DownloadError, match=r"was cut off 3 times .* kept in .*big.bin.part and the next run resumes"):
        dl.download_file(url, tmp_path / "big.bin", progress=False, retries=2, retry_wait=0)
    assert 0 < (tmp_path / "big.bin.part").stat().st_size < len(PAYLOAD)


# --- fetch / verify ----------------------------------------------------------------------------------------------


def test_404_names_the_url_and_what_to_do(server, tmp_path):
    artifact = Artifact("gone.tar", (server.url("/gone.tar"),))
    with pytest.raises(dl.DownloadError) as info:
        dl.fetch(artifact, tmp_path, progress=False, log=lambda _: None)
    message = str(info.value)
    assert server.url("/gone.tar") in message and "HTTP 404" in message
    assert f"save it as\n  {tmp_path / 'gone.tar'}" in message


def test_falls_back_to_a_mirror(server, tmp_path):
    mirror = server.serve("/mirror/file.bin", PAYLOAD)
    artifact = Artifact("file.bin", (server.url("/dead/file.bin"), mirror))
    lines = []
    path, digest = dl.fetch(artifact, tmp_path, progress=False, log=lines.append)
    assert path.read_bytes() == PAYLOAD and digest == sha256(PAYLOAD)
    assert any("HTTP 404" in line and "trying the next mirror" in line for line in lines)


def test_a_mirror_serving_other_bytes_is_skipped(server, tmp_path):
    wrong = server.serve("/wrong/file.bin", b"another version")
    right = server.serve("/right/file.bin", PAYLOAD)
    artifact = Artifact("file.bin", (wrong, right), sha256=sha256(PAYLOAD))
    lines = []
    path, _ = dl.fetch(artifact, tmp_path, progress=False, log=lines.append)
    assert path.read_bytes() == PAYLOAD
    assert any("wrong checksum" in line and "trying the next mirror" in line for line in lines)


def test_no_network_is_a_clear_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.tar"
    with pytest.raises(dl.DownloadError, match=rf"{url}: cannot connect .*no network"):
        dl.fetch(Artifact("data.tar", (url,)), tmp_path, progress=False, retries=0, log=lambda _: None)


def test_a_file_put_there_by_hand_is_used(server, tmp_path):
    (tmp_path / "manual.bin").write_bytes(PAYLOAD)
    lines = []
    path, digest = dl.fetch(Artifact("manual.bin", (server.url("/x"),)), tmp_path, log=lines.append)
    assert path.read_bytes() == PAYLOAD and digest == sha256(PAYLOAD) and server.requests == []
    assert "no published checksum; computed sha256=" + sha256(PAYLOAD) in lines[-1]


def test_checksum_mismatch_deletes_the_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    artifact = Artifact("f.bin", ("http://unused",), sha256="0" * 64)
    with pytest.raises(dl.ChecksumError, match=rf"expected sha256={'0' * 64}, got {sha256(PAYLOAD)}\. The file was "
                                               r"deleted\. What to do: run python data_scripts/download.py tiny again"):
        dl.verify(path, artifact, dataset="tiny", log=lambda _: None)
    assert not path.exists()


def test_md5_is_checked_when_it_is_the_only_published_checksum(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    lines = []
    good = Artifact("f.bin", ("http://unused",), md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dl.verify(path, good, log=lines.append) == sha256(PAYLOAD) and lines == ["f.bin: md5 OK"]
    with pytest.raises(dl.ChecksumError, match=r"expected md5=ffff"):
        dl.verify(path, Artifact("f.bin", ("http://unused",), md5="ffff"), log=lambda _: None)


def test_unknown_checksum_warns_with_the_computed_hash(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    lines = []
    dl.verify(path, Artifact("f.bin", ("http://unused",)), log=lines.append)
    (line,) = lines
    assert line.startswith("WARNING: f.bin: no published checksum; computed sha256=" + sha256(PAYLOAD))
    assert "Nothing was verified" in line and "record it" in line and path.exists()


# --- safe extraction ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("members", "links", "reason"), [
    ({"ok.txt": b"x", "../evil.txt": b"x"}, None, r"member '../evil.txt' has an '..' in the path"),
    ({"/tmp/evil.txt": b"x"}, None, r"member '/tmp/evil.txt' has an absolute path"),
    ({"ok.txt": b"x"}, {"link": "../../outside"}, r"link 'link' -> '../../outside' points outside the folder"),
    ({"ok.txt": b"x"}, {"a/link": "/etc/passwd"}, r"link 'a/link' -> '/etc/passwd' points outside the folder"),
])
def test_tar_path_traversal_is_rejected(tmp_path, members, links, reason):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(tar_bytes(members, links=links))
    dest = tmp_path / "out"
    with pytest.raises(dl.ExtractionError, match=rf"Refusing to extract bad.tar.gz: {reason}"):
        dl.safe_extract(archive, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_zip_path_traversal_is_rejected(tmp_path):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(zip_bytes({"fine.txt": b"x", "sub/../../evil.txt": b"x"}))
    with pytest.raises(dl.ExtractionError, match=r"member 'sub/../../evil.txt' has an '..' in the path"):
        dl.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_safe_archives_extract_and_merge(tmp_path):
    first = tmp_path / "a.tar"
    first.write_bytes(tar_bytes({"VOCdevkit/VOC2007/a.txt": b"A", "top.txt": b"1"}, mode="w",
                                links={"VOCdevkit/VOC2007/alias.txt": "a.txt"}))
    second = tmp_path / "b.zip"
    second.write_bytes(zip_bytes({"VOCdevkit/VOC2007/b.txt": b"B"}))
    dest = tmp_path / "out"
    assert sorted(dl.safe_extract(first, dest)) == ["VOCdevkit/VOC2007/a.txt", "VOCdevkit/VOC2007/alias.txt", "top.txt"]
    dl.safe_extract(second, dest)
    voc = dest / "VOCdevkit" / "VOC2007"
    assert (voc / "a.txt").read_bytes() == b"A" and (voc / "b.txt").read_bytes() == b"B"
    assert (voc / "alias.txt").read_bytes() == b"A"  # a link inside the folder is fine
    assert not any(p.name.startswith(".extracting") for p in dest.iterdir())


def test_html_page_saved_as_archive_is_reported(tmp_path):
    page = tmp_path / "data.tar"
    page.write_text("<html>Moved</html>")
    with pytest.raises(dl.ExtractionError, match=r"neither a tar nor a zip archive .* Delete it and download again"):
        dl.safe_extract(page, tmp_path / "out")


# --- whole datasets ----------------------------------------------------------------------------------------------


def _serve_tiny(server) -> tuple[list[Artifact], bytes]:
    archive = tar_bytes({"images/a.jpg": b"a", "images/b.jpg": b"b"})
    labels = b"a 1\nb 2\n"
    artifacts = [
        Artifact("images.tar.gz", (server.serve("/images.tar.gz", archive),), sha256=sha256(archive)),
        Artifact("labels.txt", (server.serve("/labels.txt", labels),), md5=hashlib.md5(labels).hexdigest(),
                 extract=False),
    ]
    return artifacts, archive


def test_prepare_downloads_verifies_extracts_and_counts(server, tmp_path):
    artifacts, _ = _serve_tiny(server)
    spec = tiny_spec(artifacts, [CountCheck("images/*.jpg", 2), CountCheck("labels.txt", 2, lines=True)])
    lines = []
    folder = dl.prepare(spec, tmp_path, progress=False, log=lines.append)
    assert folder == tmp_path / "tiny"
    assert (folder / "images/a.jpg").read_bytes() == b"a" and (folder / "labels.txt").read_bytes() == b"a 1\nb 2\n"
    assert not (folder / "downloads/images.tar.gz").exists()  # archives are deleted after extraction
    assert {p.name for p in (folder / "downloads").iterdir()} == {"images.tar.gz.done", "labels.txt.done"}
    assert lines[-1] == f"tiny: ready in {folder}"
    server.requests.clear()
    again = []
    dl.prepare(spec, tmp_path, progress=False, log=again.append)
    assert server.requests == [] and again[:2] == ["images.tar.gz: already done", "labels.txt: already done"]
    assert dl.verify_only(spec, tmp_path, log=lambda _: None)
    (folder / "images/b.jpg").unlink()
    report = []
    assert not dl.verify_only(spec, tmp_path, log=report.append)
    assert f"ERROR: {folder}: expected 2 files matching images/*.jpg, found 1" in report


def test_prepare_count_mismatch_strict_and_not(server, tmp_path):
    artifacts, _ = _serve_tiny(server)
    strict = tiny_spec(artifacts, [CountCheck("images/*.jpg", 3)])
    expected = r"(?s)expected 3 files matching images/\*\.jpg, found 2\nWhat to do: delete "
    with pytest.raises(dl.CountMismatchError, match=expected):
        dl.prepare(strict, tmp_path, progress=False, log=lambda _: None)
    lines = []
    dl.prepare(tiny_spec(artifacts, [CountCheck("images/*.jpg", 3, strict=False)]), tmp_path, progress=False,
               log=lines.append)
    assert any(line.startswith("WARNING:") and "found 2" in line for line in lines)


def test_prepare_checksum_mismatch_leaves_no_file_and_no_marker(server, tmp_path):
    url = server.serve("/images.tar.gz", tar_bytes({"a.jpg": b"a"}))
    spec = tiny_spec([Artifact("images.tar.gz", (url,), sha256="1" * 64)])
    with pytest.raises(dl.ChecksumError, match="was deleted"):
        dl.prepare(spec, tmp_path, progress=False, log=lambda _: None)
    assert list((tmp_path / "tiny" / "downloads").iterdir()) == []


def test_prepare_keep_archives(server, tmp_path):
    artifacts, archive = _serve_tiny(server)
    dl.prepare(tiny_spec(artifacts), tmp_path, keep_archives=True, progress=False, log=lambda _: None)
    assert (tmp_path / "tiny/downloads/images.tar.gz").read_bytes() == archive


# --- command line ------------------------------------------------------------------------------------------------


def _listed(out: str) -> dict[str, str]:
    """``--list`` rows as name -> first word of the status (the table ends at the first blank line)."""
    lines = out.split("\n\n")[0].splitlines()
    assert lines[0].split()[:2] == ["name", "status"]
    return {line.split()[0]: line.split()[1] for line in lines[1:]}


def test_cli_list_shows_every_dataset(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "no-shared"))
    assert dl.main(["--list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = _listed(out)
    assert set(rows) == set(SPECS)
    assert rows["voc2007"] == "missing" and rows["sculptures6k"] == "manual" and rows["demo_faces"] == "built"
    assert rows["flowers17"] == rows["dtd10"] == rows["ukbench2000"] == "missing"
    assert out.rstrip().endswith("(flowers17, dtd10, ukbench2000): python data_scripts/download.py course")


def test_cli_downloads_and_lists_as_on_disk(server, tmp_path, monkeypatch, capsys):
    artifacts, _ = _serve_tiny(server)
    monkeypatch.setitem(SPECS, "tiny", tiny_spec(artifacts, [CountCheck("images/*.jpg", 2)]))
    assert dl.main(["tiny", "--root", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    assert dl.main(["--list", "--root", str(tmp_path)]) == 0
    assert _listed(capsys.readouterr().out)["tiny"] == "on"
    assert dl.main(["tiny", "--root", str(tmp_path), "--verify-only"]) == 0


def test_cli_dead_link_is_a_message_not_a_traceback(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(SPECS, "tiny", tiny_spec([Artifact("x.tar", (server.url("/x.tar"),))]))
    assert dl.main(["tiny", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Could not download x.tar") and server.url("/x.tar") in err
    assert "HTTP 404" in err and "Traceback" not in err


def test_cli_usage_errors(capsys):
    assert dl.main(["no_such_set"]) == 2
    assert "Unknown dataset 'no_such_set'. Known: voc2007" in capsys.readouterr().err
    assert dl.main([]) == 2
    assert dl.main(["voc2007", "--read-timeout", "0"]) == 2
    assert "timeout must be a positive number of seconds; got 0.0" in capsys.readouterr().err


def test_cli_manual_dataset_prints_instructions(tmp_path, capsys):
    assert dl.main(["sculptures6k", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no working direct download" in err and str(tmp_path / "sculptures6k") in err and "--verify-only" in err


def test_script_runs_from_any_directory(tmp_path):
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, str(REPO / "data_scripts" / "download.py"), "--list"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "voc2007" in result.stdout and "flowers102" in result.stdout


def test_every_spec_is_consistent():
    from course_utils.datasets import available

    assert set(available()) <= set(SPECS)  # every loadable name has a spec (folder:PATH excepted)
    for spec in SPECS.values():
        assert spec.kind in ("download", "manual", "builtin"), spec.name
        assert (spec.kind == "download") == bool(spec.artifacts), spec.name
        for artifact in spec.artifacts:
            assert artifact.urls and all(u.startswith(("http://", "https://", "ftp://")) for u in artifact.urls)
            assert artifact.sha256 is None or len(artifact.sha256) == 64
            assert artifact.md5 is None or len(artifact.md5) == 32


def test_every_spec_is_in_the_datasets_table():
    table = (REPO / "docs" / "datasets.md").read_text()
    for name, spec in SPECS.items():
        row = next((line for line in table.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/datasets.md has no row for {name}"
        assert spec.paper_table.replace("|", "\\|") in row


def test_truncated_archive_is_reported(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    noise = random.Random(0).randbytes(100_000)  # incompressible, so the cut falls inside the member
    archive.write_bytes(tar_bytes({"a.bin": noise})[:50_000])
    with pytest.raises(dl.ExtractionError, match=rf"Cannot extract cut.tar.gz .* Delete {archive} and download again"):
        dl.safe_extract(archive, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_cli_list_reports_a_shared_copy(tmp_path, monkeypatch, capsys):
    (tmp_path / "shared" / "oxford_flowers102").mkdir(parents=True)
    (tmp_path / "shared" / "oxford_flowers102" / "setid.mat").write_bytes(b"x")
    (tmp_path / "shared" / "dtd_subset10").mkdir()  # an empty folder is no copy
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "shared"))
    assert dl.main(["--list", "--root", str(tmp_path / "data")]) == 0
    rows = _listed(capsys.readouterr().out)
    assert rows["flowers102"] == "shared" and rows["dtd10"] == "missing"


@pytest.mark.shared
@pytest.mark.skipif(shared_copy("flowers102") is None, reason="no shared copy of flowers102 on this machine")
def test_flowers102_checksums_match_the_official_files_in_the_shared_copy():
    folder = shared_copy("flowers102")
    kept = [a for a in SPECS["flowers102"].artifacts if not a.extract]
    assert [a.filename for a in kept] == ["imagelabels.mat", "setid.mat"]
    for artifact in kept:
        assert dl.file_digests(folder / artifact.filename) == (artifact.sha256, artifact.md5)


# --- archive faults: one error type, nothing left behind ----------------------------------------------------------


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_tar_with_a_file_and_then_a_path_through_it_is_an_extraction_error(tmp_path):
    archive = tmp_path / "clash.tar.gz"
    archive.write_bytes(tar_bytes({"a": b"file", "a/b": b"inside a file"}))
    dest = tmp_path / "out"
    with pytest.raises(dl.ExtractionError, match=r"member 'a/b' lies inside 'a', which the archive also holds as a "
                                                 rf"file.*Delete {archive} and download again"):
        dl.safe_extract(archive, dest)
    assert _leftovers(dest) == []


def test_zip_with_a_crc_error_is_an_extraction_error_and_leaves_no_temporary_folder(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr("bad.txt", b"ABCDEFGHIJ" * 10)
    data = bytearray(buffer.getvalue())
    data[data.index(b"ABCDEFGHIJ") + 3] ^= 0xFF  # one flipped byte in the stored data: the CRC no longer matches
    archive = tmp_path / "crc.zip"
    archive.write_bytes(bytes(data))
    dest = tmp_path / "out"
    with pytest.raises(dl.ExtractionError, match=r"Cannot extract crc\.zip \(BadZipFile: Bad CRC-32 for file "
                                                 rf"'bad\.txt'\): the archive is damaged.*Delete {archive}"):
        dl.safe_extract(archive, dest)
    assert _leftovers(dest) == []


def test_a_failure_while_moving_into_place_is_an_extraction_error(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "x").write_bytes(b"a file where the archive has a folder")
    archive = tmp_path / "dir.tar"
    archive.write_bytes(tar_bytes({"x/inner.txt": b"1"}, mode="w"))
    with pytest.raises(dl.ExtractionError, match=r"Cannot extract dir\.tar \((NotADirectoryError|FileExistsError)"):
        dl.safe_extract(archive, dest)
    assert _leftovers(dest) == ["x"] and (dest / "x").read_bytes().startswith(b"a file")


def test_expansion_limit_is_a_multiple_of_the_stated_or_the_archive_size():
    assert dl.expansion_limit(1000, unpacked_size=500) == 1500  # 3 x the stated unpacked size
    assert dl.expansion_limit(1000) == 20 * 1000 + 16 * 2**20  # 20 x the archive + 16 MiB


def test_an_archive_expanding_past_the_limit_is_refused_before_writing(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(40 * 2**20))  # 40 MiB of zeros in a zip of about 40 KB
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(buffer.getvalue())
    assert archive.stat().st_size < 100_000
    limit = dl.expansion_limit(archive.stat().st_size)
    dest = tmp_path / "out"
    expected = rf"Refusing to extract bomb\.zip: its members add up to 40\.0 MiB, more than the {limit / 2**20:,.1f} MiB"
    with pytest.raises(dl.ExtractionError, match=expected):
        dl.safe_extract(archive, dest)
    assert _leftovers(dest) == []
    small = tmp_path / "small.tar.gz"
    small.write_bytes(tar_bytes({"a.bin": bytes(3000)}))
    with pytest.raises(dl.ExtractionError, match=r"add up to 0\.0 MiB, more than the 0\.0 MiB allowed"):
        dl.safe_extract(small, tmp_path / "out2", max_bytes=2999)
    assert dl.safe_extract(small, tmp_path / "out3", max_bytes=3000) == ["a.bin"]


def test_prepare_uses_the_artifacts_stated_unpacked_size(server, tmp_path):
    archive = tar_bytes({"images/a.jpg": bytes(5000)})
    url = server.serve("/a.tar.gz", archive)
    spec = tiny_spec([Artifact("a.tar.gz", (url,), sha256=sha256(archive), unpacked_size=1000)])
    with pytest.raises(dl.ExtractionError, match=r"add up to 0\.0 MiB, more than the 0\.0 MiB allowed"):
        dl.prepare(spec, tmp_path, progress=False, log=lambda _: None)
    downloads = tmp_path / "tiny" / "downloads"
    assert sorted(p.name for p in downloads.iterdir()) == ["a.tar.gz"]  # kept, no marker: the next run retries
    assert not (tmp_path / "tiny" / "images").exists()


# --- timeouts: a stalled server or a silent proxy ends the attempt, keeps the bytes, and the next run resumes ----


class SilentServer:
    """A raw socket server on 127.0.0.1: reads the request, sends ``head`` (maybe nothing), then stays silent.

    It holds every connection open until :meth:`close`, like a stalled server or a proxy that never answers.
    """

    def __init__(self, head: bytes = b""):
        self.head, self.released = head, threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.05)
        while not self.released.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(self.head)
                self.released.wait(30)

    def close(self):
        self.released.set()
        self.thread.join(5)
        self.sock.close()


def test_a_server_that_stalls_mid_file_gives_up_soon_keeps_the_bytes_and_resumes(server, tmp_path):
    head = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(PAYLOAD)}\r\n\r\n").encode() + PAYLOAD[:1000]
    stalled = SilentServer(head)
    dest = tmp_path / "big.bin"
    started = time.monotonic()
    try:
        with pytest.raises(dl.DownloadError, match=r"the server stopped sending: nothing for 1 s after 1,000 of "
                                                   rf"204,800 bytes\. The bytes received are kept in {dest}\.part"):
            dl.download_file(f"http://127.0.0.1:{stalled.port}/big.bin", dest, progress=False, read_timeout=1,
                             retry_wait=0)
    finally:
        stalled.close()
    assert time.monotonic() - started < 6  # one read timeout, not retried
    assert (tmp_path / "big.bin.part").read_bytes() == PAYLOAD[:1000]
    dl.download_file(server.serve("/big.bin", PAYLOAD), dest, progress=False)  # the next run
    assert dest.read_bytes() == PAYLOAD and server.requests == [("/big.bin", "bytes=1000-")]


def test_a_proxy_that_never_answers_gives_up_after_the_read_timeout(tmp_path, monkeypatch):
    proxy = SilentServer()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setenv(dl.READ_TIMEOUT_ENV, "1")
    artifact = Artifact("data.tar", ("http://dataset-host.invalid/data.tar",))
    started = time.monotonic()
    try:
        with pytest.raises(dl.DownloadError, match=r"dataset-host\.invalid/data\.tar: connected, but no answer within "
                                                   r"1 s \(a server or proxy that does not answer"):
            dl.fetch(artifact, tmp_path, progress=False, log=lambda _: None)
    finally:
        proxy.close()
    assert time.monotonic() - started < 6


def test_timeouts_come_from_arguments_then_environment_then_defaults(monkeypatch):
    monkeypatch.delenv(dl.CONNECT_TIMEOUT_ENV, raising=False)
    monkeypatch.delenv(dl.READ_TIMEOUT_ENV, raising=False)
    assert dl.timeouts() == dl.Timeouts(15.0, 30.0)
    monkeypatch.setenv(dl.CONNECT_TIMEOUT_ENV, "2.5")
    monkeypatch.setenv(dl.READ_TIMEOUT_ENV, "4")
    assert dl.timeouts() == dl.Timeouts(2.5, 4.0) and dl.timeouts(read=7) == dl.Timeouts(2.5, 7.0)
    monkeypatch.setenv(dl.READ_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=r"COURSE_DOWNLOAD_READ_TIMEOUT='soon' is not a number of seconds"):
        dl.timeouts()
    with pytest.raises(ValueError, match=r"got -1.*COURSE_DOWNLOAD_CONNECT_TIMEOUT"):
        dl.timeouts(connect=-1, read=1)


# --- download.py course: the course's real sets, from small fakes in each official layout ------------------------


def _flowers17_datasplits() -> tuple[bytes, dict[str, list[int]]]:
    """A datasplits.mat like the official one: 3 splits of 40 train / 20 val / 20 test per class (1-based ids)."""
    from scipy.io import savemat

    rng, splits = random.Random(17), {}
    for k in (1, 2, 3):
        for key in (f"trn{k}", f"val{k}", f"tst{k}"):
            splits[key] = []
        for c in range(17):
            ids = list(range(80 * c + 1, 80 * c + 81))
            rng.shuffle(ids)
            splits[f"trn{k}"] += ids[:40]
            splits[f"val{k}"] += ids[40:60]
            splits[f"tst{k}"] += ids[60:]
    buffer = io.BytesIO()
    savemat(buffer, {key: [ids] for key, ids in splits.items()})
    return buffer.getvalue(), splits


def _serve_course(server) -> tuple[dict[str, DatasetSpec], dict]:
    """Specs of flowers17, dtd10 and ukbench2000 pointing at fakes on ``server`` (checksums of the fakes)."""
    from dataclasses import replace

    from course_utils.datasets.shared import split_list

    mat, official = _flowers17_datasplits()
    dtd_names = [f"dtd/{p}" for s in ("train", "val", "test") for p in split_list("dtd10", f"{s}.txt")]
    bodies = {
        "17flowers.tgz": tar_bytes({f"jpg/image_{k:04d}.jpg": b"flower %d" % k for k in range(1, 1361)}
                                   | {"jpg/files.txt": b"image_0001.jpg\n"}),
        "datasplits.mat": mat,
        "dtd-r1.0.1.tar.gz": tar_bytes({name: name.encode() for name in dtd_names}
                                       | {"dtd/images/zigzagged/zigzagged_0001.jpg": b"z",
                                          "dtd/labels/train1.txt": b"zigzagged/zigzagged_0001.jpg\n"}),
        "ukbench.zip": zip_bytes({f"full/ukbench{i:05d}.jpg": b"u%d" % i for i in range(2004)}),
    }
    counts = {"flowers17": CountCheck("jpg/*.jpg", 1360), "dtd10": CountCheck("dtd/images/*/*.jpg", 1201),
              "ukbench2000": CountCheck("full/*.jpg", 2004)}
    specs = {}
    for name in dl.COURSE_SETS:
        artifacts = []
        for a in SPECS[name].artifacts:
            body = bodies[a.filename]
            checksum = {"md5": hashlib.md5(body).hexdigest()} if a.md5 and not a.sha256 else {"sha256": sha256(body)}
            artifacts.append(replace(a, urls=(server.serve(f"/{a.filename}", body),), size=len(body),
                                     unpacked_size=None, **({"md5": None, "sha256": None} | checksum)))
        specs[name] = replace(SPECS[name], artifacts=tuple(artifacts), checks=(counts[name],))
    return specs, {"sizes": {n: sum(len(bodies[a.filename]) for a in s.artifacts) for n, s in specs.items()},
                   "official": official}


def test_course_downloads_the_real_sets_with_sizes_first_resume_and_checksums(server, tmp_path, monkeypatch, capsys):
    from course_utils import datasets
    from course_utils.datasets.shared import DTD10_CLASSES, FLOWERS17_CLASSES, split_list

    fakes, info = _serve_course(server)
    for name, spec in fakes.items():
        monkeypatch.setitem(SPECS, name, spec)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "empty"))  # no shared copies
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    server.httpd.drop_once.add("/ukbench.zip")
    assert dl.main(["course", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    sizes = info["sizes"]
    assert out[0].startswith("The course's real sets")
    assert out[1] == (f"  flowers17    Oxford 17 Flowers: to download: about {dl.human_size(sizes['flowers17'])} "
                      "(17flowers.tgz, datasplits.mat)")
    total = out.index(f"Total to download: about {dl.human_size(sum(sizes.values()))}, into {tmp_path / 'data'}")
    assert total == 4 and out.index("== flowers17") > total and out[-1] == "The course's real sets are ready."
    assert [r for r in server.requests if r[0] == "/ukbench.zip"][1][1].startswith("bytes=")  # resumed
    assert "17flowers.tgz: md5 OK" in out and "ukbench.zip: sha256 OK" in out

    flowers = datasets.load_preferred("flowers17", "demo_classes")
    root = tmp_path / "data" / "flowers17"
    assert capsys.readouterr().out == f"Data: flowers17 — downloaded copy, {root} (1,360 images)\n"
    assert flowers.source == "downloaded" and flowers.class_names == list(FLOWERS17_CLASSES)
    assert flowers.labels.tolist() == [k // 80 for k in range(1360)]
    for part in ("train", "test"):
        assert [p.relative_to(root).as_posix() for p in np.asarray(flowers.paths)[flowers.split == part]] == \
            split_list("flowers17", f"{part}.txt")
    official = datasets.load("flowers17", split="official2")
    assert sorted(int(p.stem[6:]) for p in np.asarray(official.paths)[official.split == "val"]) == \
        sorted(info["official"]["val2"])
    assert [int((official.split == s).sum()) for s in ("train", "val", "test")] == [680, 340, 340]

    dtd = datasets.load_preferred("dtd10", "demo_classes")
    assert dtd.source == "downloaded" and dtd.root == tmp_path / "data" / "dtd" / "dtd" and len(dtd) == 1200
    assert dtd.class_names == list(DTD10_CLASSES)
    for part in ("train", "val", "test"):
        assert sorted(p.relative_to(dtd.root).as_posix() for p in np.asarray(dtd.paths)[dtd.split == part]) == \
            split_list("dtd10", f"{part}.txt")

    uk = datasets.load_preferred("ukbench2000", "demo_retrieval")
    assert uk.source == "downloaded" and len(uk) == 2000 and uk.paths[-1].name == "ukbench01999.jpg"
    assert uk.queries[1999].positives == [1996, 1997, 1998, 1999] and uk.database.tolist() == list(range(2000))
    capsys.readouterr()

    server.requests.clear()
    assert dl.main(["course", "--quiet"]) == 0
    again = capsys.readouterr().out
    assert again.count("already downloaded in ") == 3 and "Nothing to download." in again and server.requests == []


def test_course_skips_sets_that_have_a_shared_copy_and_reports_failures(server, tmp_path, monkeypatch, capsys):
    fakes, _ = _serve_course(server)
    for name, spec in fakes.items():
        monkeypatch.setitem(SPECS, name, spec)
    shared = tmp_path / "shared"
    (shared / "oxford_flowers17").mkdir(parents=True)
    (shared / "oxford_flowers17" / "labels.csv").write_text("path,label,class_name\n")
    monkeypatch.setenv("COURSE_SHARED_DATA", str(shared))
    del server.httpd.files["/dtd-r1.0.1.tar.gz"]  # a dead link
    assert dl.main(["course", "--root", str(tmp_path / "data"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert f"  flowers17    Oxford 17 Flowers: shared copy in {shared / 'oxford_flowers17'}: nothing to download" \
        in captured.out.splitlines()
    assert not any(r[0] == "/17flowers.tgz" for r in server.requests)
    assert "error: dtd10: Could not download dtd-r1.0.1.tar.gz" in captured.err
    assert captured.out.splitlines()[-1].startswith("Not ready: dtd10 (run the same command again")
    assert (tmp_path / "data" / "ukbench" / "downloads" / "ukbench.zip.done").is_file()  # the others still ran
