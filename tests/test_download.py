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
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from course_utils import config
from course_utils.datasets import download as dl
from course_utils.datasets.specs import SPECS, Artifact, CountCheck, DatasetSpec

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
        license="test", protocol="test", metric="test", paper_table="none", artifacts=tuple(artifacts),
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


def test_cli_list_shows_every_dataset(capsys, tmp_path):
    assert dl.main(["--list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["name", "status"]
    rows = {line.split()[0]: line.split()[1] for line in out[1:]}
    assert set(rows) == set(SPECS)
    assert rows["voc2007"] == "missing" and rows["sculptures6k"] == "manual" and rows["demo_faces"] == "built"


def test_cli_downloads_and_lists_as_on_disk(server, tmp_path, monkeypatch, capsys):
    artifacts, _ = _serve_tiny(server)
    monkeypatch.setitem(SPECS, "tiny", tiny_spec(artifacts, [CountCheck("images/*.jpg", 2)]))
    assert dl.main(["tiny", "--root", str(tmp_path), "--quiet"]) == 0
    assert dl.main(["--list", "--root", str(tmp_path)]) == 0
    assert any(line.split()[:2] == ["tiny", "on"] for line in capsys.readouterr().out.splitlines())
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
        assert spec.kind in ("download", "manual", "shared", "builtin"), spec.name
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
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "shared"))
    assert dl.main(["--list", "--root", str(tmp_path / "data")]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["flowers102"] == "shared" and rows["dtd10"] == "absent"


@pytest.mark.shared
@pytest.mark.skipif(config.shared_data_dir() is None, reason="../shared/data is absent")
def test_flowers102_checksums_match_the_official_files_in_the_shared_copy():
    folder = config.shared_data_dir() / "oxford_flowers102"
    kept = [a for a in SPECS["flowers102"].artifacts if not a.extract]
    assert [a.filename for a in kept] == ["imagelabels.mat", "setid.mat"]
    for artifact in kept:
        assert dl.file_digests(folder / artifact.filename) == (artifact.sha256, artifact.md5)
