"""The home page in headless Chromium, as a new user meets it: `jupyter server --config=jupyter_config.py`
(the repository's own config, on 127.0.0.1, a free port, a token, a temporary store), then the browser
logs in on the server's login page with the token, lands on the home page, finds a run started from a
notebook (`vp.run` in a process that shares the server's store, as the kernels do) and one posted to the
legacy endpoint, follows the legacy run's archive link (a zip download) and reads the "connect the web UI"
panel, which must show this server's own API_URL. Screenshot: `tests/artifacts/home.png`.

Locally skipped when Chromium, Playwright or ../shared is missing; in CI (`CI=true`) it fails instead.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest

from builders import free_port, jupyter_process, minimal_case, multipart, require
from conftest import require_shared
from test_screenshot import CHROMIUM, CHROMIUM_FLAGS, SERVER_START_S

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
EXAMPLE = REPO.parent / "shared" / "spec" / "examples" / "example1.projectData.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`jupyter server --config=jupyter_config.py` on 127.0.0.1: (URL, token, store folder)."""
    missing = [f"{CHROMIUM} (Debian package chromium)"] if not CHROMIUM.exists() else []
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright")
    require("home-page browser test", missing)
    require_shared(EXAMPLE)
    base = tmp_path_factory.mktemp("home")
    store, root = base / "store", base / "root"
    root.mkdir()
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTER_DATA_DIR": str(base / "data"), "VP_JUPYTER_STORE": str(store),
           # `jupyter server` runs the jupyter-server found on PATH: this Python's, as in an activated venv
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    command = [sys.executable, "-m", "jupyter", "server", f"--config={REPO / 'jupyter_config.py'}", "--no-browser",
               "--ip=127.0.0.1", f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--VisualPlumesApp.max_workers=1"]
    with jupyter_process(command, env=env, log_path=base / "server.log", token=token, port=port,
                         name="jupyter server", timeout=SERVER_START_S, cwd=base) as url:
        yield url, token, store, base


def notebook_run(store: Path) -> str:
    """A run as a notebook starts it: `vp.run` in another process, recording into the server's store."""
    code = ("import json, sys, vp_jupyter as vp\n"
            "print(vp.run(json.loads(sys.argv[1])).run_id)")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(minimal_case("from a notebook"))],
                          env={**os.environ, "VP_JUPYTER_STORE": str(store)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def legacy_run(url: str, token: str) -> str:
    """A run posted to the legacy endpoint (as the web UI does; here with the token)."""
    body, content_type = multipart({"projectData": EXAMPLE.read_text()})
    request = urllib.request.Request(f"{url}/visualplumes/app/run_analysis", data=body, method="POST",
                                     headers={"Content-Type": content_type, "Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(json.loads(response.read()))["output_id"]


@pytest.mark.timeout(600)
def test_a_new_user_logs_in_finds_the_runs_and_the_web_ui_settings(server) -> None:
    from playwright.sync_api import sync_playwright

    url, token, store, base = server
    from_notebook, from_ui = notebook_run(store), legacy_run(url, token)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(base / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1300, "height": 1400}, accept_downloads=True)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            # the URL jupyter server prints, without its token: the login page, then the home page
            page.goto(f"{url}/visualplumes/")
            assert "/login" in page.url
            page.fill("input[type=password]", token)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url(f"{url}/visualplumes/")
            assert page.locator("#user").inner_text()

            rows = page.locator("#runs tr.run")
            sources = {rows.nth(i).get_attribute("data-run-id"): rows.nth(i).get_attribute("data-source")
                       for i in range(rows.count())}
            assert sources.get(from_notebook) == "notebook" and sources.get(from_ui) == "ui", sources

            assert page.locator("#api-url").inner_text() == f"{url}/visualplumes/app"
            assert page.locator("#host-name").inner_text() == "127.0.0.1"
            origins = page.locator("#allowed-origins").inner_text()
            assert "http://127.0.0.1:3001" in origins and "http://localhost:3001" in origins
            page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)

            with page.expect_download() as download:
                page.locator(f'tr.run[data-run-id="{from_ui}"] a.archive').click()
            archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
            assert download.value.suggested_filename == f"output_{from_ui}.zip"
            assert f"output_{from_ui}.params.txt" in archive.namelist()
        finally:
            context.close()
    assert (ARTIFACTS / "home.png").stat().st_size > 20_000
