"""The home page at `<base_url>visualplumes/`: HTML behind the Jupyter login, the server's settings, the
recent runs (paged) with their links, and the "connect the web UI" panel. The browser walk-through is in
tests/test_home_browser.py; the hub service's page in tests/test_hub_service.py."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

import vp_jupyter as vp
from vp_jupyter.server.app import VisualPlumesApp
from vp_jupyter.store import RunStore

from builders import minimal_case

REPO = Path(__file__).resolve().parents[1]
ALLOWED = ["http://localhost:3001", "http://127.0.0.1:3001"]


@pytest.fixture
def store_root(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def jp_server_config(store_root):
    return Config({"ServerApp": {"jpserver_extensions": {"vp_jupyter": True}},
                   "VisualPlumesApp": {"store_root": str(store_root), "allowed_origins": ALLOWED, "max_workers": 1,
                                       "run_timeout": 321.0}})


def rows(page: str) -> list[dict[str, str]]:
    """The run rows of the page: id, source and the links of each."""
    out = []
    for match in re.finditer(r'<tr class="run" data-run-id="([^"]+)" data-source="([^"]+)">(.*?)</tr>', page, re.S):
        links = dict((cls, html.unescape(href)) for href, cls in
                     [(m[1], m[0]) for m in re.findall(r'<a class="(\w+)" href="([^"]+)"', match[3])])
        out.append({"id": match[1], "source": match[2], **links})
    return out


async def test_home_page_shows_the_server_its_runs_and_how_to_connect_the_web_ui(jp_fetch, jp_base_url,
                                                                                 store_root) -> None:
    store = RunStore(store_root)
    runs = [vp.run(minimal_case(f"home {i}"), store=store).run_id for i in range(3)]
    response = await jp_fetch("visualplumes", "")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = response.body.decode()
    host = response.effective_url.split("/")[2]
    mount = jp_base_url.rstrip("/") + "/visualplumes"
    assert f'<code class="copy" id="api-url">http://{host}{mount}/app</code>' in page
    for origin in ALLOWED:
        assert f"<code>{origin}</code>" in page
    assert "host name differs from localhost" in page or "host name differs from 127.0.0.1" in page
    assert str(store_root) in page and "321 s" in page and "Jupyter server extension" in page
    listed = rows(page)
    assert [r["id"] for r in listed] == runs[::-1]                 # newest first
    first = listed[0]
    assert first["source"] == "notebook"
    assert first["archive"] == f"{mount}/api/runs/{runs[-1]}/archive"
    assert first["result"] == f"{mount}/api/runs/{runs[-1]}/result"
    # the links work
    archive = await jp_fetch("visualplumes", *first["archive"][len(mount) + 1:].split("/"))
    assert archive.headers["Content-Type"] == "application/zip" and archive.body[:2] == b"PK"
    result = await jp_fetch("visualplumes", *first["result"][len(mount) + 1:].split("/"))
    assert json.loads(result.body)["case"]["name"] == "home 2"


async def test_runs_are_paged_newest_first(jp_fetch, store_root) -> None:
    store = RunStore(store_root)
    runs = [vp.run(minimal_case(f"page {i}"), store=store).run_id for i in range(3)]
    page = (await jp_fetch("visualplumes", "", params={"limit": 2})).body.decode()
    assert [r["id"] for r in rows(page)] == [runs[2], runs[1]]
    older = html.unescape(re.search(r'<a id="older" href="([^"]+)"', page)[1])
    assert "before=" in older and runs[1] in older and "limit=2" in older      # the cursor of the last run shown
    second = (await jp_fetch("visualplumes", "", params={"limit": 2, "before": runs[1]})).body.decode()
    assert [r["id"] for r in rows(second)] == [runs[0]] and 'id="older"' not in second
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("visualplumes", "", params={"limit": "many"})
    assert err.value.code == 400 and "limit" in json.loads(err.value.response.body)["error"]


async def test_home_page_needs_the_login(jp_fetch) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("visualplumes", "", headers={"Authorization": ""}, follow_redirects=False)
    assert err.value.code == 302 and "/login?next=" in err.value.response.headers["Location"]


def test_the_server_opens_the_home_page() -> None:
    config = PyFileConfigLoader("jupyter_config.py", path=str(REPO)).load_config()
    assert config.ServerApp.default_url == VisualPlumesApp.extension_url == "/visualplumes/"
