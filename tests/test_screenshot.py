"""The quick-start notebook in a real JupyterLab, in headless Chromium: the form and the plot render.

JupyterLab runs on 127.0.0.1 (a free port, a token, a temporary root holding a copy of
`notebooks/01_quickstart.ipynb`, temporary settings, runtime and store folders). Debian's Chromium
(`/usr/bin/chromium`), driven by Playwright, opens the notebook, runs every cell from the Run menu and waits
for the kernel to finish. The test then checks the page as a person would see it: the CaseForm's widget
nodes (`.jupyter-widgets`, `.widget-*`, its inputs holding the case's values), a non-empty PNG plot, no
error output. The screenshot is saved as `tests/artifacts/quickstart.png` (a CI artefact; git-ignored),
with close-ups of the plot and the form beside it.

Locally the test is skipped when Chromium, Playwright or JupyterLab is missing; in CI (`CI=true`, where
`.ci/run` installs them) it fails instead.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest

from builders import free_port, jupyter_process, require

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_quickstart.ipynb"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 120.0
RUN_ALL_S = float(os.environ.get('VP_SCREENSHOT_RUN_S', 300))           # all cells, on a loaded 2-core machine (about 10 s normally)


def _missing() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    for module, package in (("playwright", "playwright"), ("jupyterlab", "jupyterlab"), ("ipykernel", "ipykernel")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package {package}")
    return missing


@pytest.fixture(scope="module")
def requirements() -> None:
    require("screenshot test", _missing())


def _write_settings(settings: Path) -> None:
    """JupyterLab user settings for the test: every cell kept in the page (no windowing), the notebook's
    kernel started without asking, no news or update checks (no network here)."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                        "autoStartDefaultKernel": True},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                             "checkForUpdates": False},
    }
    for name, content in files.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


@pytest.fixture(scope="module")
def lab(requirements, tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with the quick-start notebook in its root: (base URL, token)."""
    base = tmp_path_factory.mktemp("lab")
    root, config, settings = base / "root", base / "config", base / "settings"
    for folder in (root, config, settings):
        folder.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    _write_settings(settings)
    (config / "jupyter_server_config.py").write_text(
        "c.LabApp.news_url = None\n"
        "c.LabApp.check_for_updates_class = 'jupyterlab.NeverCheckForUpdate'\n"
        "c.LabApp.extension_manager = 'readonly'\n")
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "VP_JUPYTER_STORE": str(base / "store")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])]
    with jupyter_process(command, env=env, log_path=base / "jupyterlab.log", token=token, port=port,
                         name="JupyterLab", timeout=SERVER_START_S) as url:
        yield url, token, base


@pytest.mark.timeout(900)
def test_quickstart_renders_form_and_plot_in_jupyterlab(lab) -> None:
    from playwright.sync_api import sync_playwright

    url, token, base = lab
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "quickstart-failure.png").unlink(missing_ok=True)
    with sync_playwright() as playwright:
        # launch_persistent_context is Playwright's way to give Chromium its --user-data-dir
        context = playwright.chromium.launch_persistent_context(
            str(base / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 2200})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(RUN_ALL_S * 1000)
            page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=SERVER_START_S * 1000)
            _wait_for_kernel(page)

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            started = time.monotonic()
            try:
                _wait_for_all_cells(page)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "quickstart-failure.png"))
                prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
                pytest.fail(f"the cells did not all run within {RUN_ALL_S:.0f} s; prompts {prompts}, kernel "
                            f"{_kernel_status(page)}; see {ARTIFACTS / 'quickstart-failure.png'}", pytrace=False)
            print(f"run all cells: {time.monotonic() - started:.1f} s")

            outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
            text = " ".join(outputs.all_inner_texts())
            assert "Traceback" not in text and "Error displaying widget" not in text, text[-2000:]

            # the form: widget DOM nodes, rendered by the ipywidgets 8 manager, showing the case
            form = page.locator(".jp-OutputArea-output > .jupyter-widgets").last
            form.wait_for(state="visible")
            box = form.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 200, box
            assert page.locator(".jp-OutputArea-output .jupyter-widgets").count() > 20
            assert page.locator(".jp-OutputArea-output .widget-tab").count() >= 1
            values = page.locator(".jp-OutputArea-output .jupyter-widgets input").evaluate_all(
                "inputs => inputs.map(input => input.value)")
            assert "quick start outfall" in values and "0.25" in values, values[:40]
            assert page.locator(".jp-OutputArea-output .jupyter-widgets button", has_text="Run").count() >= 1

            # the plot: a non-empty PNG image output
            plot = page.locator(".jp-OutputArea-output.jp-RenderedImage img").first
            plot.wait_for(state="visible")
            width, height, source = plot.evaluate("img => [img.naturalWidth, img.naturalHeight, img.src]")
            assert width > 200 and height > 200 and source.startswith("data:image/png") and len(source) > 10_000

            plot.scroll_into_view_if_needed()
            plot.screenshot(path=str(ARTIFACTS / "quickstart_plot.png"))
            form.scroll_into_view_if_needed()
            form.screenshot(path=str(ARTIFACTS / "quickstart_form.png"))
            plot.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "quickstart.png"))
        finally:
            context.close()
    assert (ARTIFACTS / "quickstart.png").stat().st_size > 20_000
    # the notebook's run went into the server's store (the server exports it to its kernels)
    assert any(p.name != ".staging" for p in (base / "store").iterdir())


def _wait_for_kernel(page) -> None:
    """Until the notebook's kernel has started and is idle (accepting the preferred kernel should
    JupyterLab still ask for one)."""
    page.wait_for_selector(".jp-NotebookPanel .jp-KernelName, .jp-Dialog", timeout=SERVER_START_S * 1000)
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and "Select Kernel" in dialog.inner_text():
        dialog.locator(".jp-mod-accept").click()
    page.wait_for_function(
        "() => (document.querySelector('.jp-NotebookPanel .jp-KernelName')?.textContent ?? '').includes('Python')",
        timeout=SERVER_START_S * 1000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=SERVER_START_S * 1000)


def _kernel_status(page) -> "str | None":
    return page.evaluate("() => document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')"
                         "?.getAttribute('data-status') ?? null")


def _wait_for_all_cells(page) -> None:
    """Until every code cell has run: each prompt shows an execution count and the kernel is idle."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')];
            const indicator = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
            return prompts.length > 0
                && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))
                && indicator !== null && indicator.getAttribute('data-status') === 'idle';
        }""", timeout=RUN_ALL_S * 1000, polling=500)
