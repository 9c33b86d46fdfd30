"""The legacy zip archive (legacy-http-api.md §6.3, Q8): flat members `output_<run id>.…` built from the
blocks of the legacy response."""
from __future__ import annotations

import csv
import io
import itertools
import math
import time
import zipfile
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..engine.series import cyclic_gc_paused
from .response import (ambient_block, case_memos, diffuser_block, farfield_block, parameter_memos, plume_values,
                       timeseries_memos)
from .wire import check_run_id

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Result

RULE = "-" * 51


def _case_width(count: int) -> int:
    """Q8: the case-number width is the number of digits of the case count, at least 2."""
    return max(2, len(str(count)))


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv(header: list[str], rows: list[list[Any]], finite: bool = False) -> bytes:
    """Python csv defaults (comma, minimal quoting, CRLF), UTF-8 without BOM; floats as str(float), a
    non-finite one as an empty cell. `finite`: the rows hold no non-finite floats (None already)."""
    stream = io.StringIO(newline="")
    writer = csv.writer(stream)
    writer.writerow(header)
    writer.writerows(rows if finite else ([_cell(v) for v in row] for row in rows))
    return stream.getvalue().encode("utf-8")


def _csv_field(value: str) -> str:
    """`value` as the csv writer writes it in a row of several fields (quoted when it needs to be)."""
    stream = io.StringIO(newline="")
    csv.writer(stream).writerow([value, ""])
    return stream.getvalue()[:-3]            # less the empty last field and "\r\n"


def _plume_csvs(header: list[str], outputs: "Sequence[Any]", shown_values: "Sequence[Sequence[Sequence[Any]]]"
                ) -> list[bytes]:
    """Per output, what `_csv(header, [[step, *shown, status], …])` writes (the header has no status title), one
    ``%`` per row: a float is written as its repr, an int as str, None as an empty cell, the status quoted as the
    csv writer quotes it."""
    columns = list(zip(*itertools.chain.from_iterable(shown_values))) or [() for _ in header[1:]]
    cells = []
    for index, column in enumerate(columns):
        if None in column:
            columns[index] = ["" if value is None else repr(value) for value in column]
            cells.append("%s")
        else:
            cells.append("%r")
    row = "%s," + ",".join(cells) + ",%s\r\n"
    fields: dict[str, str] = {}
    statuses = [fields[status] if status in fields else fields.setdefault(status, _csv_field(status))
                for status in itertools.chain.from_iterable(o.statuses[:len(rows)]
                                                           for o, rows in zip(outputs, shown_values))]
    steps = itertools.chain.from_iterable(o.steps[:len(rows)] for o, rows in zip(outputs, shown_values))
    lines = list(map(row.__mod__, zip(steps, *columns, statuses)))
    head = _csv(header, [])
    files, start = [], 0
    for rows in shown_values:
        files.append(head + "".join(lines[start:start + len(rows)]).encode("utf-8"))
        start += len(rows)
    return files


def _column_title(header: Mapping[str, Any]) -> str:
    return f"{header['label']} ({header['units_label']})" if header["units_label"] else header["label"]


def _archive_files(result: "Result", run_id: str) -> list[tuple[str, bytes]]:
    with cyclic_gc_paused():
        return _build_files(result, run_id)


def _build_files(result: "Result", run_id: str) -> list[tuple[str, bytes]]:
    stem = f"output_{check_run_id(run_id)}"
    width = _case_width(result.case_count)
    params = parameter_memos(result)
    diffuser, ambient = diffuser_block(result), ambient_block(result)
    plume_headers, shown_values = plume_values(result)
    # the plume values went through _convert / _finite / _signed_angle: non-finite ones are None
    plume_files = _plume_csvs(["Step"] + [_column_title(h) for h in plume_headers], result.outputs, shown_values)
    farfield = farfield_block(result)
    series_memos = timeseries_memos(result)
    files = [
        (f"{stem}.params.txt", ("\n".join(params) + "\n" if params else "").encode("utf-8")),
        (f"{stem}.diffuser.csv", _csv(["Case"] + [_column_title(h) for h in diffuser["headers"]],
                                      [[n] + row for n, row in enumerate(diffuser["outputs"], start=1)])),
    ]
    ambient_titles = [_column_title(h) for h in ambient["headers"]]
    ambient_files: dict[tuple, bytes] = {}        # the cases of a series often share their layers
    for index in range(result.case_count):
        number = index + 1
        tag = f"{stem}.{number:0{width}d}"
        levels = ambient["outputs"][index]
        key = tuple(map(tuple, levels))
        if key not in ambient_files:
            ambient_files[key] = _csv(ambient_titles, levels)
        files.append((f"{tag}.ambient.csv", ambient_files[key]))
        hours = result.case_times[index] / 3600.0
        output = result.outputs[index]
        lines = [RULE, f"Case {number} (+{hours:.2f} hrs):", RULE, *series_memos[index]]
        if case_memos(output):
            lines += ["", *case_memos(output)]
        if output.postmemos:
            lines += ["", *output.postmemos]
        if farfield["was_run"] and result.farfield_outputs[index].was_run:
            lines += ["", *farfield["memos"][index]]
        files.append((f"{tag}.memos.txt", ("\n".join(lines) + "\n").encode("utf-8")))
        files.append((f"{tag}.plume.csv", plume_files[index]))
        if farfield["was_run"]:
            files.append((f"{tag}.farfield.csv", _csv([_column_title(h) for h in farfield["headers"]],
                                                      [r["values"] for r in farfield["outputs"][index]])))
    if result.tidal.was_run:
        files.append((f"{stem}.tpb.txt", "\n".join(result.tidal.memos).encode("utf-8")))
    return files


def archive_members(result: "Result", run_id: str) -> list[str]:
    """The member names of the archive, in archive order (§6.3)."""
    return [name for name, _ in _archive_files(result, run_id)]


def archive_bytes(result: "Result", run_id: str) -> bytes:
    """The zip of §6.3: flat member names `output_<run id>.…`, ZIP_DEFLATED, CSVs with CRLF (Q8 padding)."""
    buffer = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in _archive_files(result, run_id):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()

