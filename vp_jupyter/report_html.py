"""The report a regulator can read: one self-contained HTML file of a Result or a Study (Jinja2 template
`templates/report.html.j2`; plots as inline PNG images, no external resource), optionally printed to PDF
by a headless Chromium.

Sections: provenance (vp-jupyter version, case hash, run id, dates, who ran it), the case inputs with their
units, the summary table, outcome statistics (a series of cases, or a study's members), the plots, memos and
warnings, the deviations from the reference program that apply to this case (`vp_jupyter.deviations`) and,
for a Result, the Visual Plumes text report.

    result.report("report.html")            # or study.report(...); returns the HTML text
    vp-jupyter report RUN_ID -o report.html [--pdf report.pdf]
"""
from __future__ import annotations

import base64
import getpass
import hashlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .inputs import Case
    from .results import Result
    from .studies import Study

TEMPLATE = "report.html.j2"
MAX_SUMMARY_ROWS = 50               # summary rows shown (a long series: the first ones, and the statistics)
MAX_TEXT_REPORT_CHARS = 400_000     # the text report is cut here (a year of cases would be tens of MB)
MAX_MEMOS = 40                      # distinct memo lines listed
CHROMIUM_ENV = "VP_JUPYTER_CHROMIUM"
# memo lines that call for the reader's attention (listed again under "Warnings")
_WARNING_WORDS = ("warning", "consistent?", "too slow", "greater than", "exceed", "refused")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")


def case_hash(case: "Case") -> str:
    """SHA-256 of the case's canonical JSON (time-series files inlined, keys sorted): the same inputs give
    the same hash wherever the case came from."""
    text = json.dumps(case.to_dict(inline_files=True), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render(subject: "Result | Study", **thresholds: Any) -> str:
    """The report of a Result or a Study as HTML text. `thresholds`: a series' `target_dilution` and
    `concentration_limit` for its statistics (a study keeps its own)."""
    from .studies import Study

    context = _study_context(subject) if isinstance(subject, Study) else _result_context(subject, **thresholds)
    return _environment().get_template(TEMPLATE).render(**context)


def write_report(subject: "Result | Study", path: Any = None, *, pdf: Any = None, **thresholds: Any) -> str:
    """Render the report, write it to `path` (when given) and print it to the PDF file `pdf` (when given;
    RuntimeError when no Chromium is found). Returns the HTML text."""
    text = render(subject, **thresholds)
    if path is not None:
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)         # never a half-written report
    if pdf is not None:
        if path is None:
            with tempfile.TemporaryDirectory(prefix="vp-report-") as folder:
                source = Path(folder) / "report.html"
                source.write_text(text, encoding="utf-8")
                print_pdf(source, pdf)
        else:
            print_pdf(Path(path), pdf)
    return text


def find_chromium() -> str | None:
    """The Chromium to print PDFs with: $VP_JUPYTER_CHROMIUM, else chromium / chromium-browser /
    google-chrome on PATH, else /usr/bin/chromium; None when there is none."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        return given if Path(given).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def print_pdf(html_path: "str | os.PathLike", pdf_path: "str | os.PathLike", timeout_s: float = 120.0) -> Path:
    """Print an HTML file to PDF with a headless Chromium (a fresh profile folder, removed after)."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError(f"printing a PDF needs Chromium (Debian package chromium, or set {CHROMIUM_ENV})")
    source, target = Path(html_path).resolve(), Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory(prefix="vp-chromium-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
                   f"--print-to-pdf={target}", source.as_uri()]
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(f"Chromium could not print {source} to PDF (exit {done.returncode}): {' '.join(detail)}")
    return target


# ----------------------------------------------------------------------------------------- context

def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("vp_jupyter", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _number
    return env


def _common(case: "Case", run_id: str | None, store_record: Any, engine_cases: Any) -> dict[str, Any]:
    from . import __version__, _owner
    from .deviations import applicable

    now = datetime.now(timezone.utc)
    reporter = _owner(getpass)
    provenance = [("vp-jupyter version", __version__), ("case name", case.name or ""),
                  ("case hash (SHA-256)", case_hash(case)), ("run id", run_id or "not stored"),
                  ("report made", now.strftime("%Y-%m-%d %H:%M:%S UTC")), ("report made by", reporter or "unknown"),
                  ("Python", platform.python_version())]
    if store_record is not None:
        provenance[4:4] = [("run created", store_record.created), ("run by", store_record.owner or "unknown"),
                           ("run source", store_record.source)]
    return {"case_name": case.name or "case", "description": getattr(case, "description", "") or "",
            "provenance": provenance, "inputs": _inputs(case),
            "deviations": [{"ref": d.ref, "what": d.what} for d in applicable(case, engine_cases)]}


def _result_context(result: "Result", target_dilution: float | None = None,
                    concentration_limit: float | None = None) -> dict[str, Any]:
    from .studies.statistics import CONCENTRATION, DILUTION, statistics

    record = _record(result.run_id)
    context = _common(result.case, result.run_id, record, result.engine_cases)
    rows, depth_label, distance_label = result._display_rows()
    summary = {"columns": ["case", "steps", "final status", "dilution", f"depth ({depth_label})",
                           f"distance from source ({distance_label})"],
               "rows": [[r["case"], r["steps"], r["status"] or r["stop_reason"], r["dilution"], r["depth"],
                         r["source_distance"]] for r in rows[:MAX_SUMMARY_ROWS]],
               "more": max(0, len(rows) - MAX_SUMMARY_ROWS)}
    plots = [{"title": "Case 1: elevation, plan view, dilution and concentration", "image": _png(result.plot())}]
    stats = None
    if result.case_count > 1:
        found = statistics(result, target_dilution=target_dilution, concentration_limit=concentration_limit)
        stats = _statistics_context(found, "cases")
        plots.append({"title": "Exceedance curve of the dilution at the mixing-zone boundary",
                      "image": _png(found.plot_exceedance(DILUTION))})
        if found.values(CONCENTRATION).size:
            plots.append({"title": "Exceedance curve of the concentration at the mixing-zone boundary",
                          "image": _png(found.plot_exceedance(CONCENTRATION))})
    text = result.text_report()
    cut = len(text) > MAX_TEXT_REPORT_CHARS
    memos = _memos(result)
    return {**context, "kind": "result", "title": f"Visual Plumes report: {context['case_name']}",
            "summary": summary, "statistics": stats, "plots": plots, "memos": memos["memos"],
            "warnings": memos["warnings"], "text_report": text[:MAX_TEXT_REPORT_CHARS], "text_report_cut": cut,
            "study": None}


def _study_context(study: "Study") -> dict[str, Any]:
    record = _record(study.run_id)
    context = _common(study.case, study.run_id, record, None)
    summary = study.summary()
    units = study.units
    settings = study.settings
    stats = _statistics_context(study.statistics(target_dilution=settings.get("target_dilution"),
                                                 concentration_limit=settings.get("concentration_limit")), "members")
    plots = []
    if summary["ran"]:
        plots.append({"title": "Distribution of the dilution at the mixing-zone boundary",
                      "image": _png(study.plot_distribution())})
        if study.fan is not None and not study.fan.empty:
            plots.append({"title": "Dilution against distance: median, 25–75 % and 5–95 % of the members",
                          "image": _png(study.plot_fan())})
        plots.append({"title": "Exceedance curve of the dilution at the mixing-zone boundary",
                      "image": _png(study.plot_exceedance())})
    if study.indices is not None and summary["ran"]:
        plots.append({"title": "Sensitivity indices", "image": _png(study.plot_indices())})
    invalid = study.invalid
    warnings = [f"{len(invalid)} of {summary['members']} members were not run: the input layer refused their "
                "sampled values (listed below)"] if len(invalid) else []
    inputs = [{"key": key, "unit": units.get(key, ""), "spec": _spec_text(spec)} for key, spec in study.inputs.items()]
    indices = None
    if study.indices is not None:
        indices = {"columns": list(study.indices.columns),
                   "rows": study.indices.astype(object).values.tolist()}
    study_info = {"kind": study.kind, "inputs": inputs,
                  "settings": [(k, v) for k, v in settings.items() if v is not None],
                  "counts": summary, "indices": indices,
                  "invalid": [[int(r.member), r.problem] for r in invalid.head(MAX_SUMMARY_ROWS).itertuples()],
                  "invalid_more": max(0, len(invalid) - MAX_SUMMARY_ROWS),
                  "provenance": [(k, v) for k, v in study.provenance.items() if v is not None]}
    quantiles = study.quantiles(columns=["mz_dilution", "mz_concentration", "source_distance", "rise_height"])
    summary_table = {"columns": ["quantile", *[f"{c} ({units.get(c, '')})" if units.get(c) not in ("", "1", None)
                                               else c for c in quantiles.columns]],
                     "rows": [[f"{q:g}", *row] for q, row in zip(quantiles.index, quantiles.values.tolist())],
                     "more": 0}
    return {**context, "kind": "study", "title": f"Visual Plumes {study.kind} study: {context['case_name']}",
            "summary": summary_table, "statistics": stats, "plots": plots, "memos": [], "warnings": warnings,
            "text_report": None, "text_report_cut": False, "study": study_info}


def _statistics_context(stats: Any, what: str) -> dict[str, Any]:
    table = stats.percentiles(columns=["mz_dilution", "mz_concentration", "dilution", "source_distance",
                                       "rise_height"])
    units = table.attrs["units"]
    summary = stats.summary()
    facts = [(f"{what} with a dilution at the mixing-zone boundary", f"{summary['count'] - summary['missing']} "
              f"of {summary['count']}")]
    if "fraction_below_target" in summary:
        facts.append((f"{what} below the target dilution {stats.target_dilution:g}",
                      _percent(summary["fraction_below_target"])))
    if "fraction_above_limit" in summary:
        facts.append((f"{what} above the concentration limit {stats.concentration_limit:g} "
                      f"{units.get('mz_concentration', '')}", _percent(summary["fraction_above_limit"])))
    sources = stats.outcomes["mz_source"].value_counts() if "mz_source" in stats.outcomes else {}
    for source, count in dict(sources).items():
        if source:
            facts.append((f"dilution at the boundary taken from: {source}", str(int(count))))
    return {"columns": ["percentile", *[f"{c} ({units[c]})" if units.get(c) not in ("", "1") else c
                                        for c in table.columns]],
            "rows": [[f"{p:g}", *row] for p, row in zip(table.index, table.values.tolist())], "facts": facts}


def _inputs(case: "Case") -> dict[str, Any]:
    from . import units as u
    from .inputs import AMBIENT_FIELDS, DIFFUSER_FIELDS, MODEL_FIELDS

    diffuser = [(spec.label, getattr(case.diffuser, name), case.diffuser_units[name].label
                 if name in case.diffuser_units else "") for name, spec in DIFFUSER_FIELDS.items()
                if getattr(case.diffuser, name, None) is not None]
    names = [n for n in AMBIENT_FIELDS if any(getattr(layer, n, None) is not None for layer in case.ambient.layers)]
    ambient = {"columns": [f"{AMBIENT_FIELDS[n].label} ({case.ambient_units[n].label})" if n in case.ambient_units
                           else AMBIENT_FIELDS[n].label for n in names],
               "rows": [[getattr(layer, n) for n in names] for layer in case.ambient.layers]}
    model = []
    for name, spec in MODEL_FIELDS.items():
        value = getattr(case.model, name, None)
        unit = u.si_unit(spec.kind).label if spec.type == "float" and spec.kind not in ("unitless",) else ""
        model.append((spec.label, value, unit))
    series = [(f"{s['where']}.{s['variable']}", s["units"], s["rows"], s["increment_hours"]) for s in case.series_info()]
    return {"diffuser": diffuser, "ambient": ambient, "model": model, "series": series}


def _memos(result: "Result") -> dict[str, list[str]]:
    """Distinct memo lines (with how many cases gave each), far-field and tidal memos, and warnings."""
    counts: dict[str, int] = {}
    for lines in result.memos.values():
        for line in dict.fromkeys(line.strip() for line in lines if line.strip()):
            counts[line] = counts.get(line, 0) + 1
    for lines in result.farfield_memos.values():
        for line in dict.fromkeys(line.strip() for line in lines if line.strip()):
            counts[line] = counts.get(line, 0) + 1
    for line in result.tidal.memos:
        if line.strip():
            counts[line.strip()] = counts.get(line.strip(), 0) + 1
    many = result.case_count > 1
    memos = [f"{line} ({n} of {result.case_count} cases)" if many else line for line, n in counts.items()]
    warnings = [m for m in memos if any(word in m.lower() for word in _WARNING_WORDS)]
    more = len(memos) - MAX_MEMOS
    memos = memos[:MAX_MEMOS] + ([f"… {more} more distinct memo lines (result.memos)"] if more > 0 else [])
    return {"memos": memos, "warnings": warnings}


def _record(run_id: str | None) -> Any:
    """The store record of a stored run (None when not stored or not in the default store)."""
    if not run_id:
        return None
    from .store import RunNotFound, RunStore

    try:
        return RunStore().get(run_id)
    except (RunNotFound, ValueError, OSError):
        return None


def _png(fig: "Figure") -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _percent(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{100 * value:.1f} %"


def _spec_text(spec: Any) -> str:
    if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], str):
        return f"{spec[0]}({', '.join(_number(v) for v in spec[1:])})"
    if isinstance(spec, (list, tuple)):
        return f"uniform from {_number(spec[0])} to {_number(spec[1])}"
    return str(spec)
