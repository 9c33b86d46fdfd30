"""What the form shows after a run: the summary table, the plot (when `Result.plot` exists) and download
links (case JSON, the run's legacy zip archive) as HTML `<a download>` links with data: URIs, which work in
JupyterLab, Notebook and VS Code without a file server."""
from __future__ import annotations

import base64
import html
import io
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Result
    from ..store import RunStore

MAX_SUMMARY_ROWS = 50
# larger archives are not inlined as data: URIs (they would sit in the notebook's widget state)
MAX_INLINE_BYTES = 25 * 1024 * 1024


def data_link(data: bytes, filename: str, mime: str, text: str) -> str:
    """An HTML link that downloads `data` as `filename`."""
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<a download="{html.escape(filename)}" href="data:{mime};base64,{encoded}" target="_blank">'
            f"{html.escape(text)}</a>")


def safe_filename(name: str, default: str = "case") -> str:
    """A file name made of the case name (letters, digits, - _ . only)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "").strip("._")
    return stem[:80] or default


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else ""
    return html.escape(str(value))


def _heading(column: str, unit: "str | None") -> str:
    return f"{column} ({unit})" if unit not in ("", "1", None) else column


def summary_html(result: "Result", run_id: str | None = None, max_rows: int = MAX_SUMMARY_ROWS) -> str:
    """`result.summary()` as an HTML table (units in the column headers, 4 significant digits), at most
    `max_rows` cases, with a heading naming the run."""
    frame = result.summary()
    units = frame.attrs.get("units", {})
    heads = "".join(f"<th>{html.escape(_heading(c, units.get(c)))}</th>" for c in frame.columns)
    rows = []
    for record in frame.head(max_rows).itertuples(index=False):
        rows.append("<tr>" + "".join(f"<td>{_number(v)}</td>" for v in record) + "</tr>")
    more = (f"<p>… {len(frame) - max_rows} more cases (<code>form.result.summary()</code>)</p>"
            if len(frame) > max_rows else "")
    count = result.case_count
    title = f"Run {html.escape(run_id)}" if run_id else "Run (not stored)"
    name = f" — {html.escape(result.case.name)}" if result.case.name else ""
    return (f"<div><b>{title}</b>{name}: {count} case{'s' if count != 1 else ''}"
            f'<table class="vp-summary"><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f"{more}</div>")


def plot_png(result: "Result") -> bytes | None:
    """The result's plot (`Result.plot()`, case 1) as PNG bytes; None when Result has no `plot` or it made
    no figure. A figure that pyplot manages is closed afterwards, so an inline backend does not show it again."""
    plot = getattr(result, "plot", None)
    if not callable(plot):
        return None
    figure = _figure_of(plot())
    if figure is None:
        return None
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", bbox_inches="tight")
    finally:
        if getattr(figure.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt
            plt.close(figure)
    return buffer.getvalue()


def _figure_of(made: Any) -> Any:
    if made is None:
        return None
    if hasattr(made, "savefig"):
        return made
    if hasattr(made, "get_figure"):
        return made.get_figure()
    if hasattr(made, "figure"):
        return made.figure
    try:                                  # an array or list of axes
        first = next(iter(getattr(made, "flat", made)))
    except (TypeError, StopIteration):
        return None
    return _figure_of(first)


def archive_link_html(store: "RunStore", run_id: str, max_bytes: int = MAX_INLINE_BYTES) -> str:
    """A download link to the run's legacy zip archive: the stored one, else built from the stored result
    (a note instead when it is too large to inline)."""
    from ..legacy import archive_bytes, archive_filename
    from ..store import RunNotFound

    try:
        path = store.archive_path(run_id)
        content = path.read_bytes()
    except RunNotFound:
        try:
            content = archive_bytes(store.load_result(run_id), run_id)
        except RunNotFound:
            return f"<p>Run {html.escape(run_id)} has no archive.</p>"
    name, size = archive_filename(run_id), len(content)
    if size > max_bytes:
        return (f"<p>Archive {html.escape(name)} ({size / 1e6:.1f} MB) is too large to link here: download it "
                f"from the server, or write it with <code>vp.load({run_id!r})</code> and "
                f"<code>vp_jupyter.legacy.archive_bytes</code>.</p>")
    return "<p>" + data_link(content, name, "application/zip",
                             f"Download the archive {name} ({size / 1024:.0f} kB)") + "</p>"
