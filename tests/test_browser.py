"""A real browser: JupyterLab on 127.0.0.1, notebook 01 run in headless Chromium, plots, widget, concept check.

nbval proves that the notebooks' code runs; it cannot see whether a learner's browser shows the figures and the
ipywidgets (a missing front-end extension leaves a "Loading widget..." placeholder that no kernel test notices).
This test opens the notebook the way a learner does, clicks Run > Run All Cells, and looks at the page; then it
answers one of the notebook's concept checks (``cu.quiz``) as a learner would: a wrong option, Check, the hint
written for it; the right option, Check, the explanation.

It is skipped when Debian's ``chromium`` (``/usr/bin/chromium``) or the ``playwright`` Python package is missing; it
never downloads a browser. The server, its kernels and the browser are always stopped, every wait shares one time
budget, and the page may only talk to 127.0.0.1 (any other request is aborted and listed).

``COURSE_UPDATE_SCREENSHOT=1`` also writes the screenshot to ``docs/images/jupyterlab_notebook01.png`` for the
README; otherwise it stays in the test's temporary folder, so running the suite never dirties the repository.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import nbformat
import pytest

from course_utils.config import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
NOTEBOOK = REPO_ROOT / "notebooks" / "01_pretrained_network.ipynb"
SCREENSHOT = REPO_ROOT / "docs" / "images" / "jupyterlab_notebook01.png"
MAX_SCREENSHOT_BYTES = 300_000
TOTAL_BUDGET_S = 240.0  # every wait together (server, page, all cells, widget round trip); ~150 s on 2 busy cores

# Resolves to "done" when every code cell shows an execution count, to the text of a traceback as soon as one
# appears (Run All stops there, so waiting longer would only burn the budget), and to false while still running.
ALL_CELLS_RAN_JS = """(codeCells) => {
    const outputs = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')];
    const failed = outputs.find(o => o.textContent.includes('Traceback (most recent call last)'));
    if (failed) { return 'error: ' + failed.textContent.slice(0, 2000); }
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
        .map(p => p.textContent.trim());
    return prompts.length === codeCells && prompts.every(p => /^\\[\\d+\\]:?$/.test(p)) ? 'done' : false;
}"""


class Budget:
    """One deadline shared by every wait of the test, handed out as Playwright millisecond timeouts."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def seconds_left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the browser test ran past its {TOTAL_BUDGET_S:.0f} s budget")
        return left

    def ms(self, cap_s: float | None = None) -> float:
        left = self.seconds_left()
        return 1000.0 * (min(left, cap_s) if cap_s else left)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content), encoding="utf-8")


def _isolated_jupyter_env(home: Path) -> dict[str, str]:
    """Environment for a throw-away JupyterLab: its own config, runtime, settings and workspace folders.

    The user's real Jupyter set-up is neither read nor written, news and update checks are off (no traffic beyond
    127.0.0.1), the notebook's own kernel starts without a "Select Kernel" dialog, and every cell stays in the page
    (windowing off) so that the test can see all of them.
    """
    dirs = {name: home / name for name in ("config", "runtime", "data", "ipython", "settings", "workspaces")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    _write_json(dirs["config"] / "jupyter_server_config.json", {
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    })
    _write_json(dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    _write_json(dirs["settings"] / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                {"windowingMode": "none", "autoStartDefaultKernel": True})
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg; the kernel must draw inline figures for the page
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        IPYTHONDIR=str(dirs["ipython"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def _stop_process_tree(process: subprocess.Popen) -> None:
    """Stop the server and every process it started (kernels run in their own sessions, so signal them by id)."""
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if process.poll() is None:
        process.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        try:
            child.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def budget() -> Budget:
    return Budget(TOTAL_BUDGET_S)


@pytest.fixture
def playwright_api():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian package 'chromium')")
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install -e '.[dev]')")
    return pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture
def jupyter_lab(playwright_api, tmp_path, budget):
    """A JupyterLab server on 127.0.0.1 serving a copy of notebook 01; yields its URL. Always stopped."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=root, env=_isolated_jupyter_env(tmp_path / "jupyter"),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        status_url = f"http://127.0.0.1:{port}/api/status"
        request = urllib.request.Request(status_url, headers={"Authorization": f"token {token}"})
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with status {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if budget.seconds_left() < 1:
                pytest.fail(f"JupyterLab did not answer in time:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}", log=log_path)
    finally:
        _stop_process_tree(server)


@pytest.fixture
def chromium(playwright_api):
    """Headless Debian Chromium driven by Playwright (no browser download). Always closed."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                             timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


def _first_choice_question(notebook: Path) -> tuple[int, object]:
    """The first multiple-choice concept check of ``notebook``: its position among the concept checks, and the
    :class:`course_utils.quiz.Question` its cell builds (so the test knows the options, the answer and the hints)."""
    import course_utils as cu

    checks = [cell for cell in nbformat.read(notebook, as_version=4).cells
              if "concept-check" in cell.metadata.get("tags", [])]
    for position, cell in enumerate(checks):
        question = eval(compile(cell.source, f"{notebook.name}:concept-check", "eval"), {"cu": cu})  # noqa: S307
        if question.options:
            return position, question
    pytest.fail(f"{notebook.name} has no multiple-choice concept check (a cell tagged concept-check)")


def _answer(page, box, option: int, budget: Budget) -> str:
    """Select ``option`` in a concept check's radio buttons, press Check, and return the new feedback text."""
    feedback = box.locator(".widget-html").last
    before = feedback.inner_text(timeout=budget.ms(10)).strip()
    box.locator(".widget-radio-box input[type=radio]").nth(option).check(timeout=budget.ms(10))
    box.locator("button", has_text=re.compile(r"^Check$")).click(timeout=budget.ms(10))
    page.wait_for_function("([node, before]) => node.textContent.trim() !== before",  # the kernel answered
                           arg=[feedback.element_handle(), before], timeout=budget.ms(30))
    return feedback.inner_text(timeout=budget.ms(10)).strip()


def _save_screenshot(page, element, folder: Path) -> Path:
    """Screenshot with the widget at the bottom of the view, as a 256-colour PNG (a fraction of the raw size)."""
    from PIL import Image

    page.keyboard.press("Control+b")  # fold the file browser away: the notebook gets the whole width
    element.evaluate("node => node.scrollIntoView({block: 'end'})")
    raw = folder / "raw.png"
    page.screenshot(path=str(raw))
    small = folder / "jupyterlab_notebook01.png"
    Image.open(raw).convert("RGB").quantize(colors=256).save(small, optimize=True)
    if os.environ.get("COURSE_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        partial = SCREENSHOT.with_name(SCREENSHOT.name + ".partial")
        shutil.copyfile(small, partial)
        partial.replace(SCREENSHOT)
    return small


def test_notebook_01_runs_in_jupyterlab_shows_its_plots_and_widget_and_answers_a_concept_check(
    playwright_api, jupyter_lab, chromium, budget, tmp_path
):
    # JupyterLab draws no input prompt for a cell whose source is hidden (the concept checks): count the others.
    code_cells = sum(cell.cell_type == "code" and not cell.metadata.get("jupyter", {}).get("source_hidden")
                     for cell in nbformat.read(NOTEBOOK, as_version=4).cells)
    position, question = _first_choice_question(NOTEBOOK)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    blocked: list[str] = []

    def only_localhost(route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", only_localhost)
    try:
        page = context.new_page()
        page.goto(jupyter_lab.url, timeout=budget.ms(60))
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=budget.ms(60))
        page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for(timeout=budget.ms(60))

        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(timeout=budget.ms(30))
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click(timeout=budget.ms(30))
        try:
            outcome = page.wait_for_function(ALL_CELLS_RAN_JS, arg=code_cells, timeout=budget.ms(),
                                             polling=500).json_value()
        except playwright_api.TimeoutError:
            page.screenshot(path=str(tmp_path / "timeout.png"))
            prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
            pytest.fail(f"cells did not all run in time; prompts {prompts}; see {tmp_path / 'timeout.png'} and "
                        f"{jupyter_lab.log}")
        assert outcome == "done", f"a cell failed in JupyterLab:\n{outcome}\nserver log: {jupyter_lab.log}"

        # Plots: matplotlib's inline backend renders each figure as a PNG <img> that must have decoded
        # (network input, first-layer filters, the three photos with their top class).
        plots = page.locator(".jp-OutputArea-output img")
        sizes = plots.evaluate_all("imgs => imgs.map(img => [img.naturalWidth, img.naturalHeight])")
        assert len(sizes) >= 3 and all(w > 100 and h > 50 for w, h in sizes), sizes

        # The widget: its front end must be loaded (no "Loading widget..." placeholder) and talk to the kernel.
        explorer = page.locator(".jp-OutputArea-output .jupyter-widgets.widget-vbox").first
        dropdown = explorer.locator(".widget-dropdown select")
        dropdown.wait_for(timeout=budget.ms(30))
        options = dropdown.locator("option").all_inner_texts()
        assert options == ["chelsea", "coffee", "astronaut"]
        table = explorer.locator(".widget-html")
        assert "Egyptian cat  [285]" in table.inner_text(timeout=budget.ms(10))
        assert explorer.locator(".widget-image").count() == 1

        dropdown.select_option("coffee", timeout=budget.ms(10))  # a round trip through the kernel's comm
        page.wait_for_function(
            "node => node.textContent.includes('espresso')", arg=table.element_handle(), timeout=budget.ms(30)
        )
        dropdown.select_option("chelsea", timeout=budget.ms(10))
        page.wait_for_function(
            "node => node.textContent.includes('Egyptian cat')", arg=table.element_handle(), timeout=budget.ms(30)
        )

        screenshot = _save_screenshot(page, explorer, tmp_path)
        assert 0 < screenshot.stat().st_size < MAX_SCREENSHOT_BYTES

        # A concept check: rendered as a widget (not its text fallback), answered wrong, then right.
        box = page.locator(".jp-OutputArea-output .concept-check").nth(position)
        box.scroll_into_view_if_needed(timeout=budget.ms(30))
        assert question.prompt in box.inner_text(timeout=budget.ms(10))
        radios = box.locator(".widget-radio-box input[type=radio]")
        assert radios.count() == len(question.options)
        wrong = min(question.hints) if question.hints else (question.answer + 1) % len(question.options)
        assert _answer(page, box, wrong, budget) == question.grade(wrong).message
        assert _answer(page, box, int(question.answer), budget) == question.grade(int(question.answer)).message
        assert question.grade(int(question.answer)).message.startswith("\u2713 Right.")
    finally:
        context.close()
    print("requests blocked (not 127.0.0.1):", blocked or "none")
