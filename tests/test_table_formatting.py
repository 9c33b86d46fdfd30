"""The text report, the legacy plume block and the legacy archive format their tables a column at a time over all
cases; here they are checked against a plain row-by-row formatting of the same outputs (the way the tables were
built before), on a three-case series in non-SI units with non-finite values, thousands separators and statuses the
csv writer must quote."""
from __future__ import annotations

import csv
import io
import json
import math
import zipfile

import pytest

import vp_jupyter as vp
from vp_jupyter import legacy
from vp_jupyter.engine.types import PLUME_COLUMNS, CaseOutput
from vp_jupyter.legacy.response import plume_values
from vp_jupyter.report import ambient_table, diffuser_table, plume_table
from vp_jupyter.results import Result
from vp_jupyter.units import from_si, parse_unit

RUN_ID = "20250101T000000Z-0123456789abcdef0123456789abcdef"


def series_case() -> dict:
    """Three hourly cases (the flow and the current follow a series) in English and other non-SI units."""
    return {
        "name": "formatting",
        "diffuser": {
            "values": {"diameter": 4.0, "vertical_angle": 0.3, "horizontal_angle": 90, "offset_x": 0,
                       "offset_y": 0, "num_ports": 3, "port_spacing": 10, "acute_mixing_zone": 100,
                       "isopleth": 0, "depth": 150, "effluent_flow": 0.05, "salinity": 0.5, "temperature": 77,
                       "concentration": 1e8},
            "units": {"diameter": "in", "vertical_angle": "rad", "depth": "ft", "effluent_flow": "MGD",
                      "salinity": "mmhos/cm", "temperature": "F", "concentration": "ppb",
                      "isopleth": "concentration"},
        },
        "ambient": {
            "units": {"z": "ft", "current_speed": "kts", "salinity": "mmhos/cm", "temperature": "F",
                      "bg_conc": "ppb"},
            "layers": [{"z": 0, "current_speed": 0.2, "current_dir": 90, "salinity": 50, "temperature": 59,
                        "bg_conc": 0, "decay_rate": 0, "ff_velocity": 0, "ff_dir": 0, "ff_diff_coeff": 0.0003},
                       {"z": 160, "salinity": 52, "temperature": 55}],
        },
        "timeseries": {
            "start_time": 0, "end_time": 2, "time_increment": 1, "units": "hr",
            "diffuser": {"effluent_flow": {"increment_hours": 1, "units": "MGD", "csv": "0.05\n0.06\n0.05\n"}},
        },
    }


STATUSES = ["", "bottom hit", 'trap level, merging', 'say "stop"', "MZ dis; trap level"]


def output(case_number: int, rows: int) -> CaseOutput:
    """Made-up engine rows (SI) with a NaN, an infinity and values past the thousands separator."""
    columns = {name: [] for name in PLUME_COLUMNS}
    for i in range(rows):
        for k, name in enumerate(PLUME_COLUMNS):
            columns[name].append(0.37 * (k + 1) + 1.1 * i + 0.013 * case_number)
        columns["density"][-1] = 1024.6 + 0.01 * i
        columns["ambient_density"][-1] = 1025.1 - 0.001 * i
        columns["temperature"][-1] = 12.0 + 0.1 * i
        columns["ambient_temperature"][-1] = 13.0 - 0.1 * i
        columns["salinity"][-1] = 30.0 + 0.2 * i
        columns["ambient_salinity"][-1] = 33.0 - 0.2 * i
        columns["concentration"][-1] = 1e-3 / (i + 1)
        columns["vertical_angle"][-1] = -30.0 + 40.0 * i
    columns["dilution"][-1] = 12345.678 * (case_number + 1)     # thousands separators in the text
    columns["x"][-1] = 987.5                                    # 3,239.850 ft
    if case_number == 1:
        columns["y"][1] = math.nan
        columns["velocity"][2] = math.inf
        columns["iso_diameter"][0] = -math.inf
    return CaseOutput(steps=[i * 10 for i in range(rows)], statuses=STATUSES[:rows], columns=columns,
                      memos=[f"memo {case_number}"], postmemos=["post"])


@pytest.fixture(scope="module")
def result() -> Result:
    case = vp.Case.load(series_case())
    engine_cases = case.engine_cases()
    assert len(engine_cases) == 3
    return Result(case, [output(n, rows) for n, rows in enumerate([5, 4, 1])], engine_cases)


# -- the plain row-by-row formatting the fast paths must reproduce ----------------------------------------

def report_rows(out: CaseOutput, case: vp.Case) -> list[str]:
    """The plume rows of the text report: a dict per row, a conversion and a format per cell."""
    d, a = case.diffuser_units, case.ambient_units

    def to(unit, prefix=""):
        return lambda value, row: from_si(value, unit, temperature_c=row[prefix + "temperature"],
                                          salinity_psu=row[prefix + "salinity"], depth_m=row["depth"])

    radians = d["vertical_angle"].label in ("rad", "s-rad")
    cells = [("depth", 9, ",.3f", to(d["depth"])), ("diameter", 9, ",.4f", to(d["diameter"])),
             ("vertical_angle", 8, ".3f", lambda v, row: math.radians(v) if radians else v),
             ("salinity", 9, ".2f", to(a["salinity"])), ("temperature", 9, ".2f", to(a["temperature"])),
             ("concentration", 9, ".3f", to(d["concentration"])),
             ("density", 9, ".4f", lambda v, row: v - 1000.0), ("ambient_density", 9, ".4f", lambda v, row: v - 1000.0),
             ("ambient_current_speed", 9, ".3f", to(a["current_speed"], "ambient_")),
             ("velocity", 9, ".3f", lambda v, row: v), ("dilution", 9, ",.3f", lambda v, row: v),
             ("x", 9, ",.3f", to(parse_unit("ft", "length"))), ("y", 9, ",.3f", to(parse_unit("ft", "length"))),
             ("iso_diameter", 9, ",.3f", to(d["diameter"]))]
    lines = []
    for i, step in enumerate(out.steps):
        row = {name: values[i] for name, values in out.columns.items()}
        shown = [f"{step:>5}"]
        for name, width, spec, convert in cells:
            value = row[name]
            text = format(convert(value, row), spec) if math.isfinite(value) else "nan"
            shown.append(f"{text:>{width}}")
        lines.append(" ".join(shown) + ";  " + out.statuses[i])
    return lines


def legacy_values(out: CaseOutput, case: vp.Case) -> list[list]:
    """The §5.3 plume values of each row in the case's units, None where not finite."""
    d, a = case.diffuser_units, case.ambient_units
    feet, sigma_t = parse_unit("ft", "length"), parse_unit("sigmaT", "density")

    def shown(value, unit=None, temperature=None):
        if not math.isfinite(value):
            return None
        value = from_si(value, unit, temperature_c=temperature) if unit is not None else value
        return value if math.isfinite(value) else None

    def angle(value):
        degrees = (value + 180.0) % 360.0 - 180.0
        return math.radians(degrees) if d["vertical_angle"].label in ("rad", "s-rad") else degrees

    rows = []
    for i in range(len(out.steps)):
        c = {name: values[i] for name, values in out.columns.items()}
        t = c["temperature"]
        rows.append([shown(c["depth"], d["depth"], t), shown(c["diameter"], d["diameter"], t),
                     angle(c["vertical_angle"]) if math.isfinite(c["vertical_angle"]) else None,
                     shown(c["salinity"], a["salinity"], t), shown(c["temperature"], a["temperature"], t),
                     shown(c["concentration"], d["concentration"], t), shown(c["density"], sigma_t, t),
                     shown(c["ambient_density"], sigma_t, t),
                     shown(c["ambient_current_speed"], a["current_speed"], c["ambient_temperature"]),
                     shown(c["velocity"]), shown(c["dilution"]), shown(c["x"], feet, t), shown(c["y"], feet, t),
                     shown(c["iso_diameter"], d["diameter"], t)])
    return rows


# -- the checks ------------------------------------------------------------------------------------------

def test_plume_rows_of_the_report_are_the_row_by_row_formatting(result) -> None:
    text = result.text_report()
    for out in result.outputs:
        expected = report_rows(out, result.case)
        header, units, *rows = plume_table(out, result.case)
        assert rows == expected
        assert "\n".join([header, units, *expected]) in text
    cells = [row.split(";")[0].split() for row in report_rows(result.outputs[1], result.case)]
    assert cells[-1][12] == "3,239.790" and cells[-1][11] == "24,691.356"      # thousands separators
    assert cells[1][13] == cells[2][10] == cells[0][14] == "nan"               # NaN, inf and -inf SI values


def test_diffuser_and_ambient_tables_of_the_report_are_those_of_each_case(result) -> None:
    text = result.text_report()
    flows = []
    for index, engine_case in enumerate(result.engine_cases):
        table = diffuser_table(engine_case, result.case)
        assert "\n".join(table) in text
        flows.append(table[2].split()[-4])
        assert "\n".join(ambient_table(result.case, index, engine_case.settings)) in text
    assert flows[0] == flows[2] != flows[1]          # the series' flow of each case, repeated tables included
    assert text.count("Port diameter") == 3


def test_legacy_plume_values_are_the_row_by_row_conversion(result) -> None:
    _, per_case = plume_values(result)
    for out, rows in zip(result.outputs, per_case):
        assert [list(row) for row in rows] == legacy_values(out, result.case)
    body = json.loads(json.loads(legacy.success_body(result, RUN_ID)))
    assert [[row["values"] for row in rows] for rows in body["plume"]["outputs"]] == [
        legacy_values(out, result.case) for out in result.outputs]
    assert body["plume"]["outputs"][1][1]["values"][12] is None                   # y NaN -> null


def test_success_body_is_the_double_encoded_success_object(result) -> None:
    body = legacy.success_body(result, RUN_ID)
    assert body == json.dumps(json.dumps(legacy.success_object(result, RUN_ID)))


def test_archive_plume_csvs_are_what_the_csv_writer_writes(result) -> None:
    archive = zipfile.ZipFile(io.BytesIO(legacy.archive_bytes(result, RUN_ID)))
    for number, out in enumerate(result.outputs, start=1):
        written = archive.read(f"output_{RUN_ID}.{number:02d}.plume.csv")
        header = next(csv.reader([written.decode("utf-8").split("\r\n", 1)[0]]))
        stream = io.StringIO(newline="")
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows([step, *values, status] for step, values, status
                         in zip(out.steps, legacy_values(out, result.case), out.statuses))
        assert written == stream.getvalue().encode("utf-8")
    assert b'"trap level, merging"' in archive.read(f"output_{RUN_ID}.01.plume.csv")
    assert b'"say ""stop"""' in archive.read(f"output_{RUN_ID}.01.plume.csv")
