"""The repository stands alone: every relative link resolves inside it, and nothing points outside it.

Learners read the course on GitHub or in a fresh clone, where only what git tracks exists. So:

* every relative link in the documents a learner reads (README.md, docs/*.md, the READMEs of benchmarks/,
  data_scripts/ and notebooks/, and the notebooks' Markdown cells) must name a file or folder that the repository
  tracks (an ignored output folder does not count), and a ``#anchor`` into a Markdown file must name one of its
  headings, slugged by GitHub's rules;
* no file may refer to the team's private notes that live beside the repository, or to any path under the folder
  beside it other than its data folder (``COURSE_SHARED_DATA``'s default), which is a legitimate data source;
* the course's notes on the paper (docs/paper.md) keep the section anchors that notebooks link to, and print every
  number of ``course_utils.paper`` in the table it comes from.

Every failure names the file (and notebook cell or line) and the target, so one run lists all the dead links.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

import pytest

from course_utils import paper

ROOT = Path(__file__).resolve().parents[1]

# Names that must not appear anywhere in the repository, spelled in pieces so that this file does not match itself.
FORBIDDEN = (
    (re.compile("PAPER" + r"\.md"), "the team's private paper digest (use docs/paper.md)"),
    (re.compile("COURSE_" + "DESIGN"), "the team's private design notes"),
    (re.compile(r"\.\./" + "shared/" + r"(?!data\b)"), "a path beside the repository other than its data folder"),
    (re.compile("/work" + "/shared"), "an absolute path on the course's machines"),
)

# The headings of docs/paper.md that notebooks and documents link to by anchor.
PAPER_SECTIONS = (
    "1. Feature extraction",
    "2. Augmentation",
    "3. Normalisation",
    "4. Classifier",
    "5. Datasets, protocols and metrics",
    "6. Results tables",
    "7. Spatial search",
    "8. What the paper leaves open, and the course's choices",
)

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_HTML_ANCHOR = re.compile(r"""<a\s[^>]*(?:name|id)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of Markdown ``text`` outside fenced code blocks.

    Links and headings inside code are examples, not links, so they must not be checked.
    """
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                fence = None
            continue
        lines.append((number, line))
    return lines


def markdown_links(text: str) -> list[tuple[int, str]]:
    """Every link target of Markdown ``text`` with its line: inline links and images, reference definitions, HTML.

    Inline code spans are left out, like fenced blocks.
    """
    links = []
    for number, line in prose_lines(text):
        line = _CODE_SPAN.sub("", line)
        for pattern in (_INLINE_LINK, _REFERENCE_DEFINITION, _HTML_LINK):
            links.extend((number, target) for target in pattern.findall(line))
    return links


def heading_text(heading: str) -> str:
    """The text GitHub renders for a heading's Markdown: links and images keep their text, markup is dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"(?<![\w])_(.+?)_(?![\w])", r"\1", text)


def github_anchors(text: str) -> set[str]:
    """The ``#anchors`` GitHub gives the headings of Markdown ``text`` (and explicit ``<a name/id>`` anchors).

    GitHub lower-cases the heading's text, drops every character that is not a letter, digit, underscore, hyphen or
    space, turns each space into a hyphen, and appends -1, -2, ... to repeats.
    """
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(text):
        anchors.update(_HTML_ANCHOR.findall(line))
        match = _ATX_HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading_text(match.group(1)).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def repository_files(root: Path) -> set[str] | None:
    """Paths (relative, POSIX) that git tracks or would track (untracked but not ignored); None outside a checkout."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root, capture_output=True, check=True,
        ).stdout.decode("utf-8")
    except (OSError, subprocess.CalledProcessError):
        return None
    return {path for path in listing.split("\0") if path and (root / path).is_file()}


def link_sources(root: Path, files: Iterable[str]) -> list[tuple[str, str, str]]:
    """``(source label, source path, Markdown text)`` of every document whose links are checked.

    The label names the notebook cell for notebooks (cells counted from 0, as in the notebook's JSON).
    """
    documents = ["README.md", "benchmarks/README.md", "data_scripts/README.md", "notebooks/README.md"]
    documents += sorted(f for f in files if re.fullmatch(r"docs/[^/]+\.md", f))
    sources = [(doc, doc, (root / doc).read_text(encoding="utf-8")) for doc in documents if doc in files]
    for notebook in sorted(f for f in files if re.fullmatch(r"notebooks/[^/]+\.ipynb", f)):
        cells = json.loads((root / notebook).read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                sources.append((f"{notebook} cell {index}", notebook, "".join(cell["source"])))
    return sources


def dead_links(root: Path, source: str, text: str, files: set[str]) -> list[str]:
    """Each relative link of ``text`` (written in file ``source``) that does not resolve, with the reason."""
    folders = {parent.as_posix() for f in files for parent in Path(f).parents}
    dead = []
    for line, target in markdown_links(text):
        if _SCHEME.match(target):
            continue  # a web address or mailto: not this test's business
        path_part, _, anchor = target.partition("#")
        if path_part:
            resolved = (root / Path(source).parent / unquote(path_part)).resolve()
            try:
                relative = resolved.relative_to(root.resolve()).as_posix()
            except ValueError:
                dead.append(f"line {line}: {target} (outside the repository)")
                continue
        else:
            relative = source
        if relative not in files and relative not in folders:
            reason = "ignored by git" if (root / relative).exists() else "no such file"
            dead.append(f"line {line}: {target} ({reason})")
            continue
        if anchor and relative.endswith(".md"):
            anchors = github_anchors((root / relative).read_text(encoding="utf-8"))
            if unquote(anchor) not in anchors:
                dead.append(f"line {line}: {target} (no heading #{anchor} in {relative})")
    return dead


def forbidden_references(root: Path, files: Iterable[str]) -> list[str]:
    """``path:line: what`` for every mention of a document or folder outside the repository, in any text file."""
    found = []
    for name in sorted(files):
        data = (root / name).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: images, archives
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            for pattern, what in FORBIDDEN:
                if pattern.search(line):
                    found.append(f"{name}:{number}: {what}: {line.strip()[:120]}")
    return found


FILES = repository_files(ROOT)
needs_git = pytest.mark.skipif(FILES is None, reason="not a git checkout: cannot tell tracked files from ignored ones")
SOURCES = link_sources(ROOT, FILES) if FILES is not None else []


# --- the checker itself, on hand-made cases --------------------------------------------------------------------------


def test_github_anchors_follow_githubs_slug_rules() -> None:
    text = (
        "# Off-the-Shelf\n"
        "## 8. What the paper leaves open, and the course's choices\n"
        "### Table 1: Pascal VOC 2007\n"
        "## Where `COURSE_CACHE_DIR` lives\n"
        "## A [linked](other.md) *heading*\n"
        "## Notes\n## Notes\n"
        "```\n## not a heading\n```\n"
        '<a name="kept"></a>\n'
    )
    assert github_anchors(text) == {
        "off-the-shelf", "8-what-the-paper-leaves-open-and-the-courses-choices", "table-1-pascal-voc-2007",
        "where-course_cache_dir-lives", "a-linked-heading", "notes", "notes-1", "kept",
    }


def test_markdown_links_skip_code_and_find_every_link_form() -> None:
    text = (
        "See [the notes](docs/paper.md#4-classifier) and ![a picture](docs/images/x.png \"title\").\n"
        "`[not a link](code.md)`\n"
        "```bash\n[also not](fenced.md)\n```\n"
        "[ref]: benchmarks/README.md\n"
        '<img src="docs/images/y.png"> [web](https://example.org/a)\n'
    )
    assert markdown_links(text) == [
        (1, "docs/paper.md#4-classifier"), (1, "docs/images/x.png"), (6, "benchmarks/README.md"),
        (7, "https://example.org/a"), (7, "docs/images/y.png"),
    ]


def test_dead_links_names_each_broken_target_and_why(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "paper.md").write_text("# Notes\n## 1. Feature extraction\n", encoding="utf-8")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "report.md").write_text("ignored output\n", encoding="utf-8")
    files = {"docs/paper.md", "README.md"}
    text = (
        "[ok](docs/paper.md#1-feature-extraction) [folder](docs/) [self](#top)\n"
        "[bad anchor](docs/paper.md#2-augmentation)\n"
        "[missing](notebooks/00_setup.ipynb) [ignored](results/report.md) [escape](../elsewhere.md)\n"
    )
    (tmp_path / "README.md").write_text("# Top\n" + text, encoding="utf-8")
    assert dead_links(tmp_path, "README.md", "# Top\n" + text, files) == [
        "line 3: docs/paper.md#2-augmentation (no heading #2-augmentation in docs/paper.md)",
        "line 4: notebooks/00_setup.ipynb (no such file)",
        "line 4: results/report.md (ignored by git)",
        "line 4: ../elsewhere.md (outside the repository)",
    ]


def test_forbidden_references_flag_outside_documents_but_not_the_shared_data_folder(tmp_path: Path) -> None:
    lines = [
        "data come from ../shared/data/oxford_flowers102 or COURSE_SHARED_DATA",  # allowed: the data folder
        "a laptop without ../shared beside the clone",  # allowed: the folder itself, no document in it
        "see ../" + "shared/" + "PAPER" + ".md section 4",
        "see " + "COURSE_" + "DESIGN.md",
        "run ../" + "shared/" + "hooks/x",
    ]
    (tmp_path / "notes.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\0\0" + ("PAPER" + ".md").encode())
    found = forbidden_references(tmp_path, ["notes.md", "picture.png"])
    assert [entry.split(": ")[0] for entry in found] == ["notes.md:3", "notes.md:3", "notes.md:4", "notes.md:5"]
    assert "the team's private paper digest (use docs/paper.md)" in found[0]


# --- the repository ------------------------------------------------------------------------------------------------


@needs_git
@pytest.mark.parametrize(("label", "source", "text"), SOURCES, ids=[label for label, _, _ in SOURCES])
def test_every_relative_link_resolves_inside_the_repository(label: str, source: str, text: str) -> None:
    dead = dead_links(ROOT, source, text, FILES)
    assert not dead, f"{label}: {len(dead)} dead link(s):\n" + "\n".join(dead)


@needs_git
def test_the_documents_a_learner_reads_are_all_checked() -> None:
    checked = {source for _, source, _ in SOURCES}
    assert {"README.md", "docs/paper.md", "docs/protocols.md", "docs/retrieval.md", "notebooks/README.md"} <= checked
    assert sum(source.endswith(".ipynb") for source in checked) >= 9


@needs_git
def test_no_file_refers_to_documents_outside_the_repository() -> None:
    found = forbidden_references(ROOT, FILES)
    assert not found, f"{len(found)} reference(s) to files outside the repository:\n" + "\n".join(found)


# --- docs/paper.md --------------------------------------------------------------------------------------------------

PAPER_NOTES = ROOT / "docs" / "paper.md"


def paper_section(title_prefix: str) -> str:
    """The text of docs/paper.md from the heading that starts with ``title_prefix`` to the next heading."""
    text = PAPER_NOTES.read_text(encoding="utf-8")
    match = re.search(rf"^###? {re.escape(title_prefix)}.*?$(.*?)(?=^##|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/paper.md has no heading starting with {title_prefix!r}"
    return match.group(1)


def table_rows(section: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``section`` (header included, separator rows left out)."""
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s|:-]+\|?", line.strip()):
            rows.append([cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")])
    return rows


def method_row(rows: list[list[str]], method: str, where: str) -> list[str]:
    """The one row whose first cell names ``method`` (exactly, or followed by a space, colon or comma)."""
    matches = [
        row for row in rows[1:]
        if row[0] == method or (row[0].startswith(method) and row[0][len(method)] in " :,")
    ]
    assert len(matches) == 1, f"{where}: {len(matches)} rows name {method!r}"
    return matches[0]


def number(cell: str) -> float | None:
    """The first number printed in a table cell, None for a dash or N/A."""
    match = re.search(r"\d+(?:\.\d+)?", cell)
    return float(match.group()) if match else None


# Which column of docs/paper.md prints a result: Table 7 by dataset, the other tables by metric.
TABLE7_COLUMN = {
    "oxford5k": "Oxford5k", "paris6k": "Paris6k", "sculptures6k": "Sculptures6k", "holidays": "Holidays",
    "ukbench": "UKBench",
}
METRIC_COLUMN = {
    "mAP (11-point)": "mAP", "mAP": "mAP", "mean class accuracy": "mean accuracy", "mean accuracy": "mean accuracy",
    "AUC within categories": "within categories", "AUC across categories": "across categories", "mAUC": "mAUC",
}


def test_paper_notes_keep_the_section_headings_that_notebooks_link_to() -> None:
    text = PAPER_NOTES.read_text(encoding="utf-8")
    headings = [m.group(1) for m in re.finditer(r"^## (.+)$", text, re.MULTILINE)]
    assert headings == list(PAPER_SECTIONS)
    subsections = re.findall(r"^### (.+)$", text, re.MULTILINE)
    assert [s.split(":")[0] for s in subsections] == [f"Table {i}" for i in range(1, 8)] + ["Figure 1"]


@pytest.mark.parametrize("result", paper.RESULTS, ids=lambda r: f"{r.table}-{r.dataset}-{r.method}-{r.metric}")
def test_paper_notes_print_every_number_of_course_utils_paper(result: paper.PaperResult) -> None:
    where = f"docs/paper.md, {result.table}"
    rows = table_rows(paper_section(f"{result.table}:"))
    column = TABLE7_COLUMN[result.dataset] if result.table == "Table 7" else METRIC_COLUMN[result.metric]
    assert column in rows[0], f"{where}: no column {column!r} in {rows[0]}"
    cell = method_row(rows, result.method, where)[rows[0].index(column)]
    assert number(cell) == result.value, f"{where}: {result.method} {column} is {cell!r}, course_utils.paper has {result.value}"


@pytest.mark.parametrize(("table", "per_method", "names"), [
    ("Table 1", paper.VOC07_PER_CLASS, paper.VOC_CLASSES), ("Table 6", paper.H3D_PER_ATTRIBUTE, paper.H3D_ATTRIBUTES),
])
def test_paper_notes_print_every_per_class_value(table: str, per_method: dict, names: tuple[str, ...]) -> None:
    rows = table_rows(paper_section(f"{table}:"))
    assert len(rows[0]) == 1 + len(names) + 1, f"docs/paper.md, {table}: header {rows[0]}"
    for method, values in per_method.items():
        row = method_row(rows, method, f"docs/paper.md, {table}")
        assert [number(cell) for cell in row[1:1 + len(names)]] == list(values), f"{table}, {method}"


def test_paper_notes_leave_blank_what_table_7_leaves_blank() -> None:
    rows = table_rows(paper_section("Table 7:"))
    printed = {(r.method, r.dataset) for r in paper.RESULTS if r.table == "Table 7"}
    for method in {r.method for r in paper.RESULTS if r.table == "Table 7"}:
        row = method_row(rows, method, "docs/paper.md, Table 7")
        for dataset, column in TABLE7_COLUMN.items():
            if (method, dataset) not in printed:
                cell = row[rows[0].index(column)]
                assert cell in {"–", "N/A"}, f"Table 7, {method} {column}: {cell!r} where the paper prints nothing"


def test_paper_notes_print_figure_2a_as_reproduce_plots_it() -> None:
    from course_utils.reproduce import PAPER_FIG2A

    header, values = table_rows(paper_section("1. Feature extraction"))[:2]
    assert header[0] == "layer" and values[0] == "mAP"
    layers, maps = [int(cell) for cell in header[1:]], [float(cell) for cell in values[1:]]
    assert list(zip(layers, maps, strict=True)) == PAPER_FIG2A
