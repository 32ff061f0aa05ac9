"""Result records, and the files a run leaves behind: ``results.json``, ``report.md`` and PNG plots.

Every experiment returns :class:`ResultRecord` objects; this module turns a list of them into a console table, a
Markdown report with the paper's number beside ours, and a JSON file that records everything needed to rerun it
(seeds, package versions, backbone, layer, views, C, protocol).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import metrics
from .datasets.images import printable, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class ResultRecord:
    """One measured number: a dataset, a method (the paper's names, plus ours), a metric and its value.

    ``value`` is in percent for accuracy, AP and AUC, and 0 to 4 for the UKBench N-S score; ``paper`` is the paper's
    number for the same row (same units) or ``None``; ``best_prior`` the best method before the CNN on that benchmark,
    as the paper prints it (``course_utils.paper.best_prior``), on the paper's main rows; ``data`` notes how our copy
    of the data differs from the paper's.
    """

    dataset: str
    task: str
    method: str
    backbone: str
    metric: str
    value: float
    paper: float | None = None
    layer: str = ""
    views: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    protocol: str = ""
    data: str = ""
    best_prior: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


def environment_info(seed: int | None = None) -> dict[str, Any]:
    """Versions and machine facts recorded beside every result, so that a number can be traced and rerun."""
    import numpy
    import sklearn
    import torch

    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "seed": seed,
    }
    for module in ("torchvision", "timm", "onnxruntime"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    from . import __version__

    info["course_utils"] = __version__
    return info


def _fmt(value: float | None, metric: str) -> str:
    """``value`` as tables show it in the metric labelled ``metric`` (a dash for no value)."""
    return "–" if value is None else metrics.metric_labelled(metric).format(value)


def format_table(records: Sequence[ResultRecord]) -> str:
    """A plain-text table (dataset, task, method, backbone, metric, ours, paper) for the console."""
    header = ("dataset", "task", "method", "backbone", "metric", "ours", "paper")
    rows = [header] + [
        (r.dataset, r.task, r.method, r.backbone, r.metric, _fmt(r.value, r.metric), _fmt(r.paper, r.metric))
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(records: Sequence[ResultRecord]) -> str:
    """The same table in Markdown, with layer, views and settings so that a reader knows what each row ran."""
    lines = [
        "| dataset | task | method | backbone | layer | views | metric | ours | paper | best prior | settings |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        lines.append(
            f"| {r.dataset} | {r.task} | {r.method} | {r.backbone} | {r.layer} | {r.views} | {r.metric} | "
            f"**{_fmt(r.value, r.metric)}** | {_fmt(r.paper, r.metric)} | {_fmt(r.best_prior, r.metric)} | {settings} |"
        )
    return "\n".join(lines)


def to_frame(records: Iterable[ResultRecord]) -> pd.DataFrame:  # pandas comes with seaborn
    """The records as a pandas DataFrame, one row each: a table a notebook shows sortable and filterable."""
    import pandas as pd

    columns = [name for name in ResultRecord.__dataclass_fields__ if name != "settings"]
    return pd.DataFrame([{name: getattr(r, name) for name in columns} for r in records], columns=columns)


def plot_paper_vs_ours(records: Sequence[ResultRecord], path: Path) -> Path | None:
    """A grouped bar chart of ours against the paper for every row that has a paper number (percent metrics)."""
    rows = [r for r in records if r.paper is not None and metrics.metric_labelled(r.metric).points_per_unit == 1]
    if not rows:
        return None
    import seaborn as sns
    from matplotlib.figure import Figure

    long = to_frame(rows).assign(row=lambda f: f.dataset + "\n" + f.method + "\n" + f.backbone)
    long = long.melt(id_vars="row", value_vars=["paper", "value"], var_name="source", value_name="percent")
    long["source"] = long["source"].map({"paper": "paper (OverFeat)", "value": "ours"})
    # A bare Figure (not pyplot): drawing it never touches the global backend, so a notebook that writes a
    # report keeps its inline plots, and nothing is left open in pyplot.
    fig = Figure(figsize=(max(6, 1.1 * len(rows)), 4))
    ax = fig.subplots()
    sns.barplot(long, x="row", y="percent", hue="source", palette=["#999999", "#1f77b4"], ax=ax)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("")
    ax.legend(title=None)
    ax.set_ylabel("percent")
    ax.set_ylim(0, 100)
    ax.set_title("Paper versus ours")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def write_report(
    records: Iterable[ResultRecord],
    out_dir: str | Path,
    *,
    title: str,
    meta: dict[str, Any],
    sections: Sequence[str] = (),
    plots: Sequence[Path] = (),
) -> dict[str, Path]:
    """Write ``results.json``, ``report.md``, ``report.html`` and ``paper_vs_ours.png`` into ``out_dir``; return
    their paths (``report.html`` is the same report, double-clickable: plots embedded by relative links).

    ``sections`` are extra Markdown blocks (notes, per-dataset findings) and ``plots`` extra PNG files already in
    ``out_dir`` to embed in the report. ``results.json`` keeps every string exactly (JSON escapes what is not
    UTF-8); the Markdown shows undecodable bytes of file names as escapes (:func:`printable`).
    """
    records = list(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "report.md", "html": out / "report.html"}
    payload = {"meta": meta, "results": [r.to_dict() for r in records]}
    write_text_atomic(paths["json"], json.dumps(payload, indent=2, default=str) + "\n")
    chart = plot_paper_vs_ours(records, out / "paper_vs_ours.png")
    all_plots = ([chart] if chart else []) + [Path(p) for p in plots]
    body = [f"# {title}", "", f"Run on {meta.get('date', '')}; backbone(s): "
            f"{', '.join(sorted({r.backbone for r in records}))}; profile: {meta.get('profile', '')}.", "",
            markdown_table(records), ""]
    body += [section + "\n" for section in sections]
    body += [f"![{p.stem}]({p.name})\n" for p in all_plots]
    body += ["<details><summary>Environment</summary>", "", "```json", json.dumps(meta, indent=2, default=str),
             "```", "</details>", ""]
    markdown = printable("\n".join(body))
    write_text_atomic(paths["markdown"], markdown)
    write_text_atomic(paths["html"], markdown_to_html(markdown, title))
    if chart:
        paths["plot"] = chart
    return paths


HTML_STYLE = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.45}"
              "table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .5em}"
              "th{background:#f3f3f3}img{max-width:100%}pre{overflow-x:auto;background:#f7f7f7;padding:.5em}")


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone HTML page of a report's Markdown (tables included), rendered with mistune."""
    import html

    import mistune

    body = mistune.create_markdown(escape=False, plugins=["table"])(markdown)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}</style></head><body>\n{body}</body></html>\n")


def read_results(path: str | Path) -> list[ResultRecord]:
    """Read the records back from a ``results.json``."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    return [ResultRecord(**row) for row in payload["results"]]
