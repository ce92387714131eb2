"""The notebooks and reports as a user meets them, in a real browser.

Playwright drives Debian's Chromium (/usr/bin/chromium; `.ci/run` installs it): JupyterLab
on loopback runs a smoke notebook, a widget change must change the figure, a parameter edit
must rerun in the same kernel, and the HTML index of a smoke run must open with every request
that is not a local file aborted. Screenshots go to a temp folder (printed; kept by pytest's
tmp_path retention) so a person can look at the panels.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = Path(os.environ.get("TRANSFERLAB_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set "
                "TRANSFERLAB_CHROMIUM) to run the browser test", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed: pip install -e '.[dev]'")

from transferlab import runner  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "06_dim_reduction"  # cheap on smoke, and its explore box has a view toggle
SMOKE = {"profile": '"smoke"', "dims": "[1, 8, 64, 1024]"}  # = params/smoke/06_dim_reduction.yaml
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Generous: 2 shared cores, a cold kernel (the env variable shortens it when debugging).
LAB_START_S, RUN_S = 90, int(os.environ.get("TRANSFERLAB_BROWSER_RUN_S", 240))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A batch run of the notebook on the smoke profile (its index and a warm cache)."""
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("reports")
    mp = pytest.MonkeyPatch()
    mp.setenv("TRANSFERLAB_CACHE", str(cache))
    try:
        records = runner.run_study("smoke", only=[NOTEBOOK], out=out, progress_bar=False,
                                   log_output=False)
    finally:
        mp.undo()
    assert [r.status for r in records] == ["ok"], [r.error for r in records]
    return out / "smoke", cache


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with a fresh profile; every page's requests are logged by the tests."""
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=ARGS, viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parameters_cell(nb) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def _smoke_source(**changes: str) -> str:
    """The parameters cell of the committed notebook with the smoke values (and `changes`)."""
    source = _parameters_cell(nbformat.read(ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", 4)).source
    for name, value in {**SMOKE, **changes}.items():
        source = re.sub(rf"^{name} = [^#\n]*", f"{name} = {value}  ", source, flags=re.M)
    return source


def _smoke_notebook(folder: Path) -> Path:
    """The committed notebook with the smoke values in its parameters cell (as papermill or a
    user would set them); the copy keeps JupyterLab's autosave away from notebooks/."""
    nb = nbformat.read(ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    _parameters_cell(nb).source = _smoke_source()
    path = folder / f"{NOTEBOOK}.ipynb"
    nbformat.write(nb, path)
    return path


def _lab_env(home: Path, cache: Path) -> dict[str, str]:
    env = {**os.environ, "TRANSFERLAB_CACHE": str(cache), "TRANSFERLAB_THREADS": "1",
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "run"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings")}
    from jupyter_client.kernelspec import find_kernel_specs

    if "transferlab" not in find_kernel_specs():  # `make install` registers it; a bare venv not
        spec = home / "data" / "kernels" / "transferlab"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "transferlab (.venv)", "language": "python"}))
        env["JUPYTER_PATH"] = str(home / "data")
    return env


@pytest.fixture(scope="module")
def lab(smoke, tmp_path_factory):
    """JupyterLab on 127.0.0.1 (a free port, a token) serving a copy of the notebook."""
    _, cache = smoke
    home = tmp_path_factory.mktemp("lab")
    work = home / "work"
    work.mkdir()
    _smoke_notebook(work)
    port, token = _free_port(), os.urandom(12).hex()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}", "--ServerApp.port_retries=0",
           # nothing that would reach for the network: no news feed, no PyPI extension manager
           "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = (home / "lab.log").open("w")
    proc = subprocess.Popen(cmd, env=_lab_env(home, cache), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/api/status?token={token}", proc, home / "lab.log")
        yield base, token, work
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_for(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + LAB_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer {url} in {LAB_START_S} s:\n{log.read_text()[-3000:]}")


def _loopback_only(page, refused: list[str]) -> None:
    """Abort every request that leaves the machine (the lab must not need the network)."""
    def handle(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", handle)


_ALL_RAN = """() => {
    const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
    if (outputs.some(o => o.textContent.includes('Traceback'))) return true;  // Run All stopped
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent.trim());
    return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
}"""


def _run_all(page, shots: Path, name: str) -> None:
    """Run > Run All Cells, then wait until every cell has run (or one failed)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    try:
        page.wait_for_function(_ALL_RAN, timeout=RUN_S * 1000)
    except sync_api.TimeoutError:
        page.screenshot(path=str(shots / f"{name}_timeout.png"), full_page=True)
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        raise AssertionError(f"Run All did not finish in {RUN_S} s; prompts {prompts}; "
                             f"screenshot in {shots}") from None


def _outputs_text(page) -> str:
    # textContent: innerText skips the cells JupyterLab keeps out of view (windowing)
    return "\n".join(page.locator(".jp-OutputArea-output").all_text_contents())


def _explore_png(page) -> str:
    img = page.locator(".jp-OutputArea-output .widget-output img").last
    img.wait_for(timeout=30_000)
    return img.get_attribute("src") or ""


def test_jupyterlab_runs_redraws_and_reruns_in_the_same_kernel(browser, lab, shots):
    base, token, _ = lab
    page = browser.new_page()
    refused: list[str] = []
    _loopback_only(page, refused)
    page.goto(f"{base}/lab/tree/{NOTEBOOK}.ipynb?token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=LAB_START_S * 1000)
    kernel = page.locator(".jp-Toolbar-kernelName").first  # the project's kernel, not python3
    sync_api.expect(kernel).to_contain_text("transferlab", timeout=LAB_START_S * 1000)
    status = page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"transferlab.*Idle"))
    status.wait_for(timeout=LAB_START_S * 1000)  # Run All before the kernel is up runs nothing
    _run_all(page, shots, "lab_run")
    text = _outputs_text(page)
    assert "Traceback" not in text, text[-3000:]
    assert "dims=(1, 8, 64, 1024)" in text
    page.screenshot(path=str(shots / "lab_run.png"), full_page=True)

    no_news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's news prompt
    if no_news.is_visible():
        no_news.click()
    before = _explore_png(page)
    page.get_by_role("button", name="relative", exact=True).last.click()
    page.wait_for_function(  # the widget redraws into its Output: a new PNG
        """(old) => { const imgs = document.querySelectorAll('.widget-output img');
                      return imgs.length && imgs[imgs.length - 1].src !== old; }""",
        arg=before, timeout=30_000)
    assert _explore_png(page) != before
    page.locator(".widget-output").last.screenshot(path=str(shots / "lab_explore_relative.png"))

    # Edit the parameters cell as a user would, then Run All again in the same kernel.
    editor = page.locator(".jp-CodeCell").nth(0).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(_smoke_source(dims="[1, 8]"))
    _run_all(page, shots, "lab_rerun")
    text = _outputs_text(page)
    assert "Traceback" not in text and "unknown parameter" not in text, text[-3000:]
    assert "dims=(1, 8)" in text
    page.screenshot(path=str(shots / "lab_rerun.png"), full_page=True)
    assert refused == [], f"the lab asked the network for {refused}"
    page.close()


def test_html_index_opens_offline(browser, smoke, shots):
    folder, _ = smoke
    page = browser.new_page()
    refused: list[str] = []

    def handle(route):
        if route.request.url.startswith(("file://", "data:")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", handle)
    page.goto((folder / "index.html").as_uri())
    headings = page.locator("h2").all_inner_texts()
    assert headings[0] == "Verdicts"  # the index opens on the verdict table
    assert page.locator("#verdicts td.reproduced, #verdicts td.not-reproduced, "
                        "#verdicts td.inconclusive").count() > 0
    images = page.locator("img")
    assert images.count() >= 1
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(shots / "index.png"), full_page=True)
    page.get_by_role("link", name=re.compile("Dimensionality")).first.click()
    page.wait_for_load_state()
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("img").count() >= 2  # the raw and relative panel figures
    page.screenshot(path=str(shots / "notebook_report.png"), full_page=True)
    assert refused == [], f"the report asked the network for {refused}"
    page.close()
