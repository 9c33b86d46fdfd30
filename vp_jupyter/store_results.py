"""How a stored run keeps its result: the tables as Parquet (pyarrow), the rest as gzip-compressed JSON.

    plume.parquet       the plume table (`Result.plume`: case, step, status and every engine column, SI)
    farfield.parquet    the Brooks far-field table (`Result.farfield`), when the far field was run
    result.json.gz      `Result.to_dict(tables=False)`: names, units, memos, summary, tidal output, the case

Together they hold exactly `Result.to_dict()`; `result_dict` puts it back together (for `vp.load`) and
`iter_result_json` writes its JSON text piece by piece (for the JSON API: a year of hourly cases is about
55 MB of JSON, never built whole). Runs stored before this layout (format 1) have one `result.json`;
both functions read it too. A year of hourly cases (8 760 cases, 80 000 plume rows) takes about 2 MB
instead of 56 MB.
"""
from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from .output_table import OutputTable
    from .results import Result

PLUME_FILE = "plume.parquet"
FARFIELD_FILE = "farfield.parquet"
RESULT_META_FILE = "result.json.gz"
LEGACY_RESULT_FILE = "result.json"          # format 1: the whole to_dict() as JSON
GZIP_LEVEL = 1         # the stored response of a year (51 MB of JSON) in 0.3 s instead of 1.1 s at level 6, 20 % larger
CASES_PER_PIECE = 200                       # cases per piece of `iter_result_json`


def result_files(result: "Result", case_dict: dict[str, Any]) -> dict[str, bytes]:
    """The files of a result, name -> content (see the module docstring)."""
    import pyarrow.parquet as pq

    files = {}
    tables = {PLUME_FILE: _table(result.plume_table)}
    if result.farfield_table.total_rows:
        tables[FARFIELD_FILE] = _table(result.farfield_table)
    for name, table in tables.items():
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        files[name] = buffer.getvalue()
    light = result.to_dict(tables=False)
    light["case"] = case_dict
    files[RESULT_META_FILE] = gzip.compress(
        json.dumps(light, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), GZIP_LEVEL)
    return files


def _table(table: "OutputTable") -> Any:
    """The plume (with status) or far-field table of engine outputs as an Arrow table: the columns of
    `Result.plume` / `Result.farfield`, from the joined arrays, without pandas (the command line never
    imports it)."""
    import numpy as np
    import pyarrow as pa

    columns: dict[str, Any] = {"case": table.case_numbers, "step": table.steps}
    if table.statuses is not None:
        columns["status"] = table.statuses
    columns.update(table.columns)
    # Arrow arrays from their buffers: pa.array / pa.table would import pandas to look for DataFrames
    arrays = []
    for values in columns.values():
        if isinstance(values, list):
            encoded = [text.encode("utf-8") for text in values]
            offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
            offsets[1:] = np.cumsum([len(item) for item in encoded])
            arrays.append(pa.Array.from_buffers(pa.string(), len(encoded),
                                                [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]))
        else:
            values = np.ascontiguousarray(values)
            kind = pa.int64() if values.dtype.kind == "i" else pa.float64()
            arrays.append(pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)]))
    return pa.Table.from_arrays(arrays, names=list(columns))


def has_result(folder: Path) -> bool:
    return (folder / RESULT_META_FILE).is_file() or (folder / LEGACY_RESULT_FILE).is_file()


def result_dict(folder: Path) -> dict[str, Any]:
    """`Result.to_dict()` of the run stored in `folder` (non-finite numbers as NaN, ready for
    `Result.from_dict`). FileNotFoundError when the run has no result."""
    legacy_file = folder / LEGACY_RESULT_FILE
    if legacy_file.is_file():
        with open(legacy_file, encoding="utf-8") as handle:
            return json.load(handle)
    data = _light(folder)
    for key, entries in _table_entries(folder, data, json_safe=False):
        data[key] = entries
    return data


def iter_result_json(folder: Path) -> Iterator[bytes]:
    """The JSON text of `Result.to_dict()` of the run in `folder`, in pieces (UTF-8; null for non-finite
    numbers). Format-1 runs: their `result.json` as it is."""
    legacy_file = folder / LEGACY_RESULT_FILE
    if legacy_file.is_file():
        with open(legacy_file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk
        return
    data = _light(folder)
    tables = dict(_table_entries(folder, data, json_safe=True))
    markers = {key: f"\x00{key}\x00" for key in tables}
    text = _dumps({**data, **markers})
    for key in sorted(tables, key=lambda name: text.index(_dumps(markers[name]))):
        entries = tables[key]
        head, _, text = text.partition(_dumps(markers[key]))
        yield head.encode("utf-8")
        yield b"["
        for start in range(0, len(entries), CASES_PER_PIECE):
            piece = ",".join(_dumps(entry) for entry in entries[start:start + CASES_PER_PIECE])
            yield (piece if start == 0 else "," + piece).encode("utf-8")
        yield b"]"
    yield text.encode("utf-8")


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def _light(folder: Path) -> dict[str, Any]:
    with open(folder / RESULT_META_FILE, "rb") as handle:
        return json.loads(gzip.decompress(handle.read()))


def _table_entries(folder: Path, data: dict[str, Any], json_safe: bool) -> Iterator[tuple[str, list]]:
    """("plume", per-case entries) and ("farfield", …) of to_dict(), with the table columns put back."""
    from .engine.types import FARFIELD_COLUMNS, PLUME_COLUMNS

    for key, name, columns, with_status in (("plume", PLUME_FILE, PLUME_COLUMNS, True),
                                            ("farfield", FARFIELD_FILE, FARFIELD_COLUMNS, False)):
        entries = [dict(entry) for entry in data.get(key) or []]
        path = folder / name
        table = _read_table(path) if path.is_file() else None
        bounds = _case_bounds(table, len(entries))
        values = {column: _column(table, column, json_safe) for column in columns}
        steps = _column(table, "step", False) if table is not None else None
        statuses = _column(table, "status", False) if table is not None and with_status else None
        for index, entry in enumerate(entries):
            start, stop = bounds[index]
            entry["steps"] = steps[start:stop] if steps is not None else []
            if with_status:
                entry["statuses"] = statuses[start:stop] if statuses is not None else []
            entry["columns"] = {column: (column_values[start:stop] if column_values is not None else [])
                                for column, column_values in values.items()}
        yield key, entries


def _read_table(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _case_bounds(table: Any, count: int) -> list[tuple[int, int]]:
    """[start, stop) rows of every case (1-based `case` column, rows in case order)."""
    import numpy as np

    if table is None or count == 0:
        return [(0, 0)] * count
    cases = table.column("case").to_numpy()
    rows = np.bincount(cases, minlength=count + 1)[1:count + 1]
    stops = np.cumsum(rows)
    return [(int(stop - size), int(stop)) for size, stop in zip(rows, stops)]


def _column(table: Any, name: str, json_safe: bool) -> "list | None":
    import numpy as np

    if table is None or name not in table.column_names:
        return None
    column = table.column(name)
    if name == "status":
        return ["" if value is None else value for value in column.to_pylist()]
    array = column.to_numpy()
    values = array.tolist()
    if json_safe and array.dtype.kind == "f" and not np.isfinite(array).all():
        values = [value if math.isfinite(value) else None for value in values]
    return values
