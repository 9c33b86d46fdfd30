"""The HTML report (`vp_jupyter.report_html`): sections, inputs with units, inline plots, deviations that
apply, provenance; `vp-jupyter report`; PDF printing; and the report in headless Chromium (Playwright with
Debian's Chromium, as tests/test_screenshot.py): no console errors, every section there, every plot image
decoded and non-empty, a screenshot saved under tests/artifacts/.

The browser test is skipped locally when Chromium or Playwright is missing; in CI (`CI=true`) it fails.
"""
from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vp_jupyter as vp
from builders import complete_case, require, write_case
from vp_jupyter.cli import example_case_path
from vp_jupyter.report_html import case_hash, find_chromium

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
RESULT_SECTIONS = ["provenance", "inputs", "summary", "plots", "memos", "deviations", "text-report"]
IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def images(text: str) -> list[bytes]:
    return [base64.b64decode(data) for data in IMAGE.findall(text)]


def test_result_report_has_every_section_inputs_with_units_and_provenance(tmp_path) -> None:
    result = vp.run(example_case_path())
    path = tmp_path / "report.html"
    text = result.report(path)
    assert path.read_text(encoding="utf-8") == text
    for section in RESULT_SECTIONS:
        assert f'<section id="{section}">' in text
    assert "http://" not in text and "https://" not in text and "<script" not in text     # self-contained
    pngs = images(text)
    assert len(pngs) == 1 and all(png.startswith(b"\x89PNG") and len(png) > 10_000 for png in pngs)
    assert "<td>Effluent flow</td><td class=\"num\">0.12</td><td>m3/s</td>" in text
    assert "Effluent concentration" in text and "ppm" in text
    assert case_hash(result.case) in text and result.run_id in text and vp.__version__ in text
    # the Visual Plumes text report, escaped, in a <pre>
    first_line = result.text_report().splitlines()[0]
    assert first_line.replace("&", "&amp;").replace("<", "&lt;") in text
    assert len(re.findall(r'<section id="statistics">', text)) == 0      # one case: no series statistics


def test_deviations_listed_are_those_that_apply_to_the_case(tmp_path) -> None:
    plain = vp.run(example_case_path(), store=False).report()
    farfield = vp.run(complete_case("ff report", brooks=True), store=False).report()
    assert "§13 item 10" not in plain and "§13 item 10" in farfield
    assert "§13 item 9" in plain                                            # applies to every case
    assert "§12" not in plain


def test_series_report_has_statistics_and_exceedance_plots() -> None:
    result = vp.run(complete_case("series report", cases=30), store=False)
    text = result.report()
    assert '<section id="statistics">' in text and "cases below" not in text
    assert "cases below the target dilution 80" in result.report(target_dilution=80)
    assert "Exceedance curve of the dilution" in text
    assert len(images(text)) >= 2
    assert "Timeseries" in text or "effluent_flow" in text


def test_study_report_has_design_statistics_and_plots(tmp_path) -> None:
    study = vp.uncertainty(example_case_path(), {"diffuser.effluent_flow": ["normal", 0.12, 0.06]}, n=24, seed=2,
                           max_workers=2, progress=False, store=False, target_dilution=200)
    text = study.report(tmp_path / "study.html")
    for section in ("provenance", "inputs", "study", "summary", "statistics", "plots", "memos", "deviations"):
        assert f'<section id="{section}">' in text
    assert "normal(0.12, 0.06)" in text and "members below the target dilution 200" in text
    assert len(images(text)) == 3                    # distribution, fan, exceedance
    if len(study.invalid):
        assert "Members not run" in text


def test_cli_report_of_a_case_file_and_of_a_run_id(tmp_path) -> None:
    case = write_case(tmp_path, complete_case("cli report"))
    out = tmp_path / "from_case.html"
    done = subprocess.run([sys.executable, "-m", "vp_jupyter.cli", "report", str(case), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run_id = re.search(r"run id: (\S+)", done.stderr).group(1)
    assert run_id in out.read_text(encoding="utf-8")
    again = tmp_path / "from_id.html"
    done = subprocess.run([sys.executable, "-m", "vp_jupyter.cli", "report", run_id, "-o", str(again)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'id="text-report"' in again.read_text(encoding="utf-8")
    missing = subprocess.run([sys.executable, "-m", "vp_jupyter.cli", "report", "20260101T000000Z-" + "0" * 32],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "no run" in missing.stderr and "Traceback" not in missing.stderr


def test_pdf_is_printed_when_chromium_is_there(tmp_path) -> None:
    require("PDF test", [] if find_chromium() else ["Chromium (Debian package chromium)"])
    pdf = tmp_path / "report.pdf"
    vp.run(example_case_path(), store=False).report(tmp_path / "report.html", pdf=pdf)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000


@pytest.mark.timeout(600)
def test_the_report_opens_in_headless_chromium_without_console_errors(tmp_path) -> None:
    missing = [] if CHROMIUM.exists() else [f"{CHROMIUM} (Debian package chromium)"]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the Python package playwright")
    require("report browser test", missing)

    result = vp.run(complete_case("browser report", cases=6, brooks=True))
    path = tmp_path / "report.html"
    result.report(path)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 1600})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            assert problems == []
            sections = page.locator("section").evaluate_all("nodes => nodes.map(n => n.id)")
            assert sections == ["provenance", "inputs", "summary", "statistics", "plots", "memos", "deviations",
                                "text-report"]
            for section in sections:        # each has a heading and content a reader sees
                box = page.locator(f"section#{section}").bounding_box()
                assert box is not None and box["height"] > 40, section
            plots = page.locator("section#plots img")
            assert plots.count() >= 2
            for size in plots.evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"):
                assert size[0] and size[1] > 300 and size[2] > 200, size
            text = page.locator("section#text-report pre").inner_text()
            assert "Case 1" in text and len(text) > 1000
            assert page.locator("section#deviations td", has_text="§13 item 10").count() == 1
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
            page.locator("section#plots figure").first.screenshot(path=str(ARTIFACTS / "report_plot.png"))
        finally:
            context.close()
    assert (ARTIFACTS / "report.png").stat().st_size > 20_000


def test_the_form_report_button_offers_the_report_of_the_last_run(tmp_path) -> None:
    from vp_jupyter.widgets import CaseForm

    form = CaseForm(str(example_case_path()), store=False)
    assert form.report_button.disabled and form.report() is None
    assert "Run the case first" in form.report_link.value
    form.run(300)
    assert not form.report_button.disabled
    form.report_button.click()
    link = re.search(r'download="([^"]+)" href="data:text/html;base64,([A-Za-z0-9+/=]+)"', form.report_link.value)
    assert link and link.group(1) == "stratified_outfall_report.html"
    page = base64.b64decode(link.group(2)).decode("utf-8")
    assert '<section id="text-report">' in page and len(images(page)) == 1
    written = form.report(tmp_path / "form.html")
    assert (tmp_path / "form.html").read_text(encoding="utf-8") == written
