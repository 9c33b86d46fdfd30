"""The engine outputs of many cases as one table (`OutputTable`): every column one float64 array joined over
the cases, the number of rows of each case, the steps (and plume statuses) of every row, and each case's
small fields (memos, stop reason, refusal; far field: whether it ran, memos).

It is the one compact form of outputs: chunk tasks hand theirs over in it (a few arrays pickle in one go,
where a small array per column and case — 350 000 of them for a year of hourly cases — did not), a finish
joins the chunks with one concatenate per column (`OutputTable.join`), and the plume and far-field tables
(`Result.plume`, the stored Parquet files) are built from its arrays without a loop over cases. The
per-case `CaseOutput` / `FarFieldOutput` objects come back with `outputs()` (columns as lists of floats,
as the engine makes them) for the code that reads one case at a time. The engine's final element state
(`CaseOutput.final`) is not kept: nothing after the engine uses it.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from .engine.types import FARFIELD_COLUMNS, PLUME_COLUMNS, CaseOutput, FarFieldOutput

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

PLUME, FARFIELD = "plume", "farfield"
# the small per-case fields kept beside the rows, in this order
CASE_FIELDS = {PLUME: ("memos", "postmemos", "stop_reason", "error"), FARFIELD: ("was_run", "memos")}
COLUMN_NAMES = {PLUME: tuple(PLUME_COLUMNS), FARFIELD: tuple(FARFIELD_COLUMNS)}


@dataclass
class OutputTable:
    """Outputs of consecutive cases, `kind` "plume" (CaseOutput) or "farfield" (FarFieldOutput)."""
    kind: str
    rows: np.ndarray                    # int64, rows of each case
    steps: np.ndarray                   # int64, the step of every row
    columns: dict[str, np.ndarray]      # float64, every column over all rows (COLUMN_NAMES[kind])
    statuses: "list[str] | None"        # plume: the status text of every row
    fields: list[tuple]                 # per case: its CASE_FIELDS[kind] values

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def total_rows(self) -> int:
        return int(self.rows.sum())

    @property
    def case_numbers(self) -> np.ndarray:
        """The 1-based case number of every row."""
        import numpy as np

        return np.repeat(np.arange(1, len(self.rows) + 1, dtype=np.int64), self.rows)

    def last_rows(self) -> np.ndarray:
        """The index of the last row of every case; -1 for a case without rows."""
        import numpy as np

        ends = np.cumsum(self.rows) - 1
        return np.where(self.rows > 0, ends, -1)

    def field(self, name: str) -> list:
        """One small field of every case (e.g. "memos")."""
        position = CASE_FIELDS[self.kind].index(name)
        return [values[position] for values in self.fields]

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def from_outputs(cls, outputs: "Sequence[CaseOutput | FarFieldOutput]", kind: str) -> "OutputTable":
        """The table of engine outputs (CaseOutput for "plume", FarFieldOutput for "farfield"). ValueError
        when a case's columns are not all as long as its steps."""
        import numpy as np

        names = COLUMN_NAMES[kind]
        rows = np.fromiter((len(o.steps) for o in outputs), dtype=np.int64, count=len(outputs))
        for number, (output, count) in enumerate(zip(outputs, rows.tolist()), start=1):
            columns = output.columns
            if len(columns) != len(names) or any(len(columns[name]) != count for name in names):
                raise ValueError(f"case {number}: its {kind} columns are not {', '.join(names)}, "
                                 f"each with one value per step ({count})")
        total = int(rows.sum())

        def joined(values_of_each: Any, dtype: Any) -> np.ndarray:
            return np.fromiter(itertools.chain.from_iterable(values_of_each), dtype=dtype, count=total)

        return cls(
            kind=kind, rows=rows,
            steps=joined((o.steps for o in outputs), np.int64),
            columns={name: joined((o.columns[name] for o in outputs), np.float64) for name in names},
            statuses=[s for o in outputs for s in o.statuses] if kind == PLUME else None,
            fields=[tuple(_copied(getattr(o, name)) for name in CASE_FIELDS[kind]) for o in outputs])

    @classmethod
    def join(cls, tables: "Sequence[OutputTable]", kind: str) -> "OutputTable":
        """The tables of consecutive chunks as one (in the order given)."""
        import numpy as np

        if not tables:
            return cls.from_outputs([], kind)

        def concatenate(arrays: list, dtype: Any) -> np.ndarray:
            return np.concatenate(arrays) if len(arrays) > 1 else np.asarray(arrays[0], dtype=dtype)

        return cls(
            kind=kind,
            rows=concatenate([t.rows for t in tables], np.int64),
            steps=concatenate([t.steps for t in tables], np.int64),
            columns={name: concatenate([t.columns[name] for t in tables], np.float64) for name in COLUMN_NAMES[kind]},
            statuses=list(itertools.chain.from_iterable(t.statuses for t in tables)) if kind == PLUME else None,
            fields=list(itertools.chain.from_iterable(t.fields for t in tables)))

    # ----------------------------------------------------------------------------------------------- per case
    def outputs(self) -> "list[CaseOutput] | list[FarFieldOutput]":
        """The per-case engine outputs, columns as lists of floats (`final` is None)."""
        import numpy as np

        names = COLUMN_NAMES[self.kind]
        columns = {name: self.columns[name].tolist() for name in names}
        steps = self.steps.tolist()
        stops = np.cumsum(self.rows).tolist()
        starts = [0, *stops[:-1]]
        built: list = []
        if self.kind == PLUME:
            statuses = self.statuses or []
            for start, stop, (memos, postmemos, stop_reason, error) in zip(starts, stops, self.fields):
                built.append(CaseOutput(
                    steps=steps[start:stop], statuses=statuses[start:stop],
                    columns={name: columns[name][start:stop] for name in names},
                    memos=list(memos), postmemos=list(postmemos), stop_reason=stop_reason, error=error))
        else:
            for start, stop, (was_run, memos) in zip(starts, stops, self.fields):
                built.append(FarFieldOutput(
                    was_run=was_run, steps=steps[start:stop],
                    columns={name: columns[name][start:stop] for name in names}, memos=list(memos)))
        return built


def _copied(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
