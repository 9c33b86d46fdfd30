"""The Visual Plumes text report: Appendix A of the legacy spec reproduced exactly, and its blocks."""
from __future__ import annotations

import json
import re

import pytest

import vp_jupyter as vp
from vp_jupyter.engine.types import PLUME_COLUMNS, CaseOutput
from vp_jupyter.report import RULE, parameter_block, plume_table
from vp_jupyter.results import Result

from conftest import SPEC, require_shared

FT = 3.2808  # spec §2


def appendix_a_text() -> str:
    """The exact text_outputs of legacy Example 1 (legacy-http-api.md, Appendix A), read in place."""
    spec = require_shared(SPEC / "legacy-http-api.md").read_text(encoding="utf-8")
    appendix = spec.split("## Appendix A", 1)[1]
    return appendix.split("```text\n", 1)[1].split("```", 1)[0]


def example1_case() -> dict:
    """Legacy Example 1 (legacy-http-api.md §10) written in the case schema."""
    return {
        "name": "legacy example 1",
        "diffuser": {
            "values": {"diameter": 0.05, "vertical_angle": 20, "horizontal_angle": 0, "offset_x": 0,
                       "offset_y": 0, "num_ports": 1, "acute_mixing_zone": 100, "isopleth": 0, "depth": 49,
                       "effluent_flow": 0.05, "salinity": 0, "temperature": 25, "concentration": 100},
            "units": {"effluent_flow": "MGD", "concentration": "ppm", "isopleth": "concentration"},
        },
        "ambient": {
            "units": {"bg_conc": "ppm"},
            "layers": [{"z": 0, "current_speed": 0.1, "current_dir": 90, "salinity": 33, "temperature": 15,
                        "bg_conc": 0, "decay_rate": 0, "ff_velocity": 0, "ff_dir": 0, "ff_diff_coeff": 0.0003},
                       {"z": 50}],
        },
    }


# the appendix plume columns, in order, as (engine column, printed value -> SI)
APPENDIX_COLUMNS = [
    ("depth", lambda v: v), ("diameter", lambda v: v), ("vertical_angle", lambda v: v),
    ("salinity", lambda v: v), ("temperature", lambda v: v), ("concentration", lambda v: v / 1e6),
    ("density", lambda v: v + 1000), ("ambient_density", lambda v: v + 1000),
    ("ambient_current_speed", lambda v: v), ("velocity", lambda v: v), ("dilution", lambda v: v),
    ("x", lambda v: v / FT), ("y", lambda v: v / FT), ("iso_diameter", lambda v: v),
]


def output_from_appendix(lines: list[str]) -> CaseOutput:
    """Rebuild the engine output (SI) behind Appendix A from its memo, plume and post-memo lines."""
    froude = next(i for i, line in enumerate(lines) if line.startswith("Froude No:"))
    header = next(i for i, line in enumerate(lines) if line.startswith(" Step "))
    end_rows = lines.index("", header)
    output = CaseOutput(memos=lines[froude:header - 1], postmemos=["\n".join(lines[end_rows + 1:])])
    for name in PLUME_COLUMNS:
        output.columns[name] = []
    for line in lines[header + 2:end_rows]:
        numbers, status = line.split(";  ", 1)
        step, *values = numbers.replace(",", "").split()
        output.steps.append(int(step))
        output.statuses.append(status)
        printed = dict(zip([name for name, _ in APPENDIX_COLUMNS], map(float, values)))
        for name in PLUME_COLUMNS:
            to_si = dict(APPENDIX_COLUMNS).get(name)
            output.columns[name].append(to_si(printed[name]) if to_si else 0.0)
    return output


def test_report_reproduces_appendix_a_exactly() -> None:
    expected = appendix_a_text()
    output = output_from_appendix(expected.splitlines())
    assert len(output.steps) == 7 and output.statuses[-1] == "stop dilution reached"
    case = vp.Case.load(example1_case())
    text = Result(case, [output], case.engine_cases()).text_report()
    assert text.splitlines() == expected.splitlines()
    assert text == expected


def single_port_case(**model) -> dict:
    case = example1_case()
    case["model"] = model
    return case


def test_plume_table_has_the_fourteen_legacy_columns_and_status_suffix() -> None:
    case = vp.Case.load(single_port_case())
    columns = {name: [1.0, 2.0] for name in PLUME_COLUMNS}
    output = CaseOutput(steps=[0, 57], statuses=["", "trap level, merging"], columns=columns)
    header, units, first, last = plume_table(output, case)
    assert header.split() == ["Step", "Depth", "Width", "V-angle", "Salinity", "Temp.", "Pollutant", "Density",
                              "Amb-den", "Amb-cur", "Velocity", "Dilution", "X-pos", "Y-pos", "Iso", "diameter"]
    assert units.split() == ["(m)", "(m)", "(deg)", "(PSU)", "(°C)", "(ppm)", "(sigmaT)", "(sigmaT)", "(m/s)",
                             "(m/s)", "(ft)", "(ft)", "(m)"]
    assert first.endswith(";  ") and last.endswith(";  trap level, merging")
    assert last.startswith("   57")
    cells = last.split(";")[0].split()
    # density as sigmaT, pollutant in ppm, positions in feet (spec legacy §5.3)
    assert cells[7] == f"{2.0 - 1000:.4f}" and cells[6] == f"{2.0 * 1e6:.3f}"
    assert cells[12] == f"{2.0 * FT:,.3f}"


def test_parameter_block_for_brooks_and_tidal_buildup() -> None:
    brooks = vp.Case.load(single_port_case(brooks_far_field=True, ff_increment=250,
                                           farfield_diffusivity="POWER_4_3"))
    lines = parameter_block(brooks.engine_cases()[0].settings, brooks.to_dict())
    assert lines[:3] == [RULE, "Model Parameters", RULE]
    at = lines.index("Brooks far-field solution")
    assert lines[at + 1:at + 4] == ["   Far-field increment:       250.0 m",
                                    "   Estimate far-field bg.:    False",
                                    "   Far-field diffusivity:     4/3 power diffusivity"]
    tpb_case = single_port_case(tidal_pollution_buildup=True, tpb_channel_width=39.6, tpb_segment_length=80.46,
                                tpb_upstream_dir=180, tpb_coast_bin=65, tpb_coast_concentration=9e-06,
                                tpb_mixing_zone_ceil=3.657)
    tpb = vp.Case.load(tpb_case)
    lines = parameter_block(tpb.engine_cases()[0].settings, tpb.to_dict())
    at = lines.index("Tidal pollution buildup")
    assert lines[at + 1:at + 7] == ["   Channel width:             39.6 m", "   Channel seg. length:       80.46 m",
                                    "   Upstream dir.:             180.0°", "   Coast bin:                 65",
                                    "   Coast concentration:       9e-06", "   Mixing zone depth:         3.657 m"]
    assert "No far-field model selection" not in lines


def test_brooks_ambient_table_shows_dispersion_but_not_far_field_speed() -> None:
    case = vp.Case.load(single_port_case(brooks_far_field=True))
    output = CaseOutput(steps=[0], statuses=[""], columns={name: [1.0] for name in PLUME_COLUMNS})
    text = Result(case, [output], case.engine_cases()).text_report()
    header = next(line for line in text.splitlines() if line.startswith("  Depth"))
    assert header.split("  ")[-2:] == ["Dispersion", "Density"]
    assert "Far-field" not in header


def test_time_series_cases_get_their_times_indices_and_the_series_block() -> None:
    case = single_port_case()
    case["timeseries"] = {
        "start_time": 0, "end_time": 3, "time_increment": 1.5, "units": "hr",
        "diffuser": {"effluent_flow": {"increment_hours": 1, "units": "MGD", "csv": "0.05\n0.06\n0.04\n"}},
    }
    loaded = vp.Case.load(case)
    engine_cases = loaded.engine_cases()
    assert len(engine_cases) == 3
    outputs = [CaseOutput(steps=[0], statuses=["surface"], columns={n: [1.0] for n in PLUME_COLUMNS})
               for _ in engine_cases]
    lines = Result(loaded, outputs, engine_cases).text_report().splitlines()
    at = lines.index("Timeseries Data")
    assert lines[at - 2:at + 2] == ["", RULE, "Timeseries Data", RULE]
    assert lines[at + 2:at + 4] == ["Start/end time: 0.0 hr / 3.0 hr", "Time increment: 1.5 hr"]
    assert lines[at + 4:at + 8] == ["1. Diffuser timeseries (effluent_flow)", "   units:          MGD",
                                    "   increment:      1.0 hrs", "   cycling period: 3 -> 3.0 hrs"]
    headings = [line for line in lines if re.match(r"Case \d", line)]
    assert headings == ["Case 1 (+0.00 hrs):", "Case 2 (+1.50 hrs):", "Case 3 (+3.00 hrs):"]
    # rows floor(t / 1 h) mod 3: 0, 1, 3 mod 3 = 0
    assert [line for line in lines if line.startswith("Timeseries indices")] == [
        "Timeseries indices: 0", "Timeseries indices: 1", "Timeseries indices: 0"]
    # the diffuser table of case 2 shows that case's flow (row 1 of the series)
    flows = [lines[i + 2].split()[-4] for i, line in enumerate(lines) if line.startswith("Port diameter")]
    assert flows == ["0.05000", "0.06000", "0.05000"]


REFERENCE_CASES = ["01_readme_single_port", "03_multiport_stratified_trap", "06_crossflow_current",
                   "07_brooks_farfield_4_3", "10_timeseries_tpb_hourly", "11_units_english_farfield",
                   "12_units_height_extrapolation", "sejpa_dec2013_maxbrine"]
# cells where the project's layer filling (spec §5.2) and the reference disagree, as (case, variable, layer):
# case 12 asks for an EXTRAPOLATED salinity above its shallowest value; spec §5.2 gives the line through the
# two shallowest points (29 psu at the surface) while the reference port kept the constant 30 psu (and so
# the surface density differs too).
KNOWN_FILLING_DIFFERENCES = {("12_units_height_extrapolation", "salinity", 0),
                             ("12_units_height_extrapolation", "density", 0)}
# decimals of the legacy ambient table by unit class (legacy-http-api.md §5.5)
AMBIENT_DECIMALS = {"Angle": 0, "Length": 3, "Speed": 4, "Density": 4, "DecayRate": 4,
                    "Concentration": 2, "Salinity": 2, "Temperature": 2}


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_diffuser_and_ambient_tables_match_the_reference_tables(name) -> None:
    """The goldens hold the diffuser and ambient tables of the reference port (input units);
    printed with the legacy decimals, ours must read the same."""
    import json

    from conftest import REFERENCE, reference_case
    from vp_jupyter.report import ambient_table, diffuser_table

    case = vp.Case.load(reference_case(name))
    golden = json.loads(require_shared(REFERENCE / "golden" / f"{name}.json").read_text())
    engine_cases = case.engine_cases()
    for index in sorted({0, len(engine_cases) - 1}):
        engine_case = engine_cases[index]
        header, units, values = diffuser_table(engine_case, case)
        row = golden["diffuser_table"]["rows"][index]
        flow_column = [h["name"] for h in golden["diffuser_table"]["headers"]].index("effluent_flow")
        expected = [f"{v:.{5 if i in (0, flow_column) else 1}f}" for i, v in enumerate(row)]
        assert values.split() == expected

        headers = golden["ambient_table"]["headers"]
        shown = [i for i, h in enumerate(headers) if not h["label"].startswith("Far-field")]
        if name == "03_multiport_stratified_trap":  # p,S,T equation of state fixed (spec §13 item 4)
            shown = [i for i in shown if headers[i]["name"] != "density"]
        table = ambient_table(case, index, engine_case.settings)
        assert table[0].split("  ")[-1].strip() == "Density"
        printed = [i for i, h in enumerate(headers) if not h["label"].startswith("Far-field")]
        for layer, (line, golden_row) in enumerate(zip(table[2:], golden["ambient_table"]["rows"][index],
                                                       strict=True)):
            cells = dict(zip(printed, line.split()))
            compared = [i for i in shown if (name, headers[i]["name"], layer) not in KNOWN_FILLING_DIFFERENCES]
            expected = [f"{golden_row[i]:.{AMBIENT_DECIMALS.get(headers[i]['units'], 1)}f}" for i in compared]
            assert [cells[i] for i in compared] == expected


# -- Brooks far field and tidal buildup ---------------------------------------------------------------

FARFIELD_LABELS = ["Time", "Current speed", "Current direction", "Width", "Distance", "Background concentration",
                   "Concentration", "Dilution", "Decay rate", "Dispersion"]
# legacy §5.5: width max(6, label) (+1 but for the first column), at least 8 for Time / Speed / Width,
# 9 for Distance / Dilution / the diffusivity, 12 for Dispersion
FARFIELD_WIDTHS = [8, 14, 18, 8, 9, 25, 14, 9, 11, 12]


def farfield_section(lines: list[str], first_label: str = "    Time") -> tuple[int, int]:
    """(index of the far-field header line, index after its last row) of a one-case report."""
    header = next(i for i, line in enumerate(lines) if line.startswith(first_label + "  Current speed"))
    end = lines.index("", header) if "" in lines[header:] else len(lines)
    return header, end


def load_reference_run(name: str, **model):
    """Run reference case `name` (read in place), with model parameters overridden by `model`."""
    import json

    from conftest import reference_case

    data = json.loads(reference_case(name).read_text())
    data["model"] = {**data.get("model", {}), **model}
    return vp.run(data)


@pytest.mark.parametrize(("name", "diffusivity_label"), [("07_brooks_farfield_4_3", "4/3 eddy diffusivity"),
                                                          ("08_brooks_farfield_constant", "Eddy diffusivity"),
                                                          ("11_units_english_farfield", "4/3 eddy diffusivity")])
def test_far_field_section_follows_the_post_memos_with_legacy_headers(name, diffusivity_label) -> None:
    import json

    from conftest import REFERENCE

    result = load_reference_run(name)
    lines = result.text_report().splitlines()
    memos = result.farfield_memos[1]
    assert memos and result.farfield_outputs[0].was_run
    header, end = farfield_section(lines)
    # an empty line, the far-field memos, an empty line, then the table (legacy §5.5)
    assert lines[header - len(memos) - 2:header] == ["", *memos, ""]
    assert lines[header - len(memos) - 3].startswith("Rate sec-1:")  # right after the post-memos
    labels = re.split(r"\s{2,}", lines[header].strip())
    assert labels == FARFIELD_LABELS + [diffusivity_label]
    widths = FARFIELD_WIDTHS + [max(9, len(diffusivity_label) + 1)]
    assert len(lines[header]) == sum(widths) + len(widths) - 1
    # one line per far-field row, and nothing else up to the end of the report
    assert end - header - 2 == len(result.farfield) > 1
    assert end == len(lines)
    # the labels and units are those of the reference port's far-field headers (legacy §5.3)
    golden = json.loads(require_shared(REFERENCE / "golden" / f"{name}.json").read_text())
    expected_units = [f"({h['units_label']})" for h in golden["farfield"]["headers"] if h["units_label"]]
    assert [h["label"] for h in golden["farfield"]["headers"]] == labels
    assert lines[header + 1].split() == expected_units


def test_english_far_field_rows_are_in_the_case_units() -> None:
    """Case 11: far-field speed in ft/s, direction in s-deg, concentrations in ppb (spec §2 factors)."""
    result = load_reference_run("11_units_english_farfield")
    lines = result.text_report().splitlines()
    header, end = farfield_section(lines)
    assert lines[header + 1].split()[:3] == ["(hr)", "(ft/s)", "(s-deg)"]
    assert lines[header + 1].split()[5:7] == ["(ppb)", "(ppb)"]
    si = result.farfield
    assert end - header - 2 == len(si)
    for line, row in zip(lines[header + 2:end], si.itertuples(), strict=True):
        cells = line.split()
        assert len(cells) == 11
        assert cells[0] == f"{row.time / 3600:,.2f}"
        assert cells[1] == f"{row.ff_velocity * FT:,.2f}" == "0.50"  # the input 0.5 ft/s comes back
        assert cells[2] == "90.0"  # 90 s-deg in, 0° counter-clockwise from east inside
        assert cells[3] == f"{row.width:,.0f}" and cells[4] == f"{row.distance:,.1f}"
        assert cells[5] == f"{row.background * 1e9:,.4f}"
        assert cells[6] == f"{row.concentration * 1e9:,.4f}"
        assert cells[7] == f"{row.dilution:,.1f}"
        assert cells[9] == f"{row.ff_diff_coeff:,.4f}" and cells[10] == f"{row.diffusivity_argument:,.4f}"
    # the far field goes past 1 km here: thousands separators
    assert any("," in line.split()[4] for line in lines[header + 2:end])


def test_far_field_table_formats_values_by_the_legacy_rules() -> None:
    from vp_jupyter.engine.types import FARFIELD_COLUMNS, FarFieldOutput
    from vp_jupyter.report import farfield_table

    case = vp.Case.load(single_port_case(brooks_far_field=True, farfield_diffusivity="CONSTANT"))
    values = {"time": 7200.0, "ff_velocity": 0.25, "ff_dir": 90.0, "width": 1234.6, "distance": 12345.67,
              "background": 2e-7, "concentration": 1.23456e-3, "dilution": 4567.89, "decay_rate": 0.0,
              "ff_diff_coeff": 0.0003, "diffusivity_argument": 0.123456}
    assert set(values) <= set(FARFIELD_COLUMNS)
    columns = {name: [values.get(name, 0.0)] for name in FARFIELD_COLUMNS}
    output = FarFieldOutput(was_run=True, steps=[3], columns=columns, memos=["Const Eddy Diffusivity."])
    header, units, row = farfield_table(output, case, case.engine_cases()[0].settings)
    assert header.endswith("  Eddy diffusivity")
    assert units.split() == ["(hr)", "(m/s)", "(deg)", "(m)", "(m)", "(ppm)", "(ppm)", "(s-1)", "(m0.67/s2)"]
    # no step column; hours 2 decimals, speed 2, width 0, concentrations 4, dispersion and X 4, else 1
    assert row.split() == ["2.00", "0.25", "90.0", "1,235", "12,345.7", "0.2000", "1,234.5600", "4,567.9",
                           "0.0", "0.0003", "0.1235"]
    assert len(row) == len(header)


def test_no_far_field_section_when_brooks_is_off() -> None:
    result = load_reference_run("07_brooks_farfield_4_3", brooks_far_field=False)
    text = result.text_report()
    assert not any(o.was_run for o in result.farfield_outputs) and result.farfield.empty
    assert "eddy diffusivity" not in text.lower() and "Farfield dispersion" not in text
    assert not any(line.lstrip().startswith("Time  Current speed") for line in text.splitlines())
    assert text.splitlines()[-1].startswith("Rate sec-1:")  # the report still ends with the post-memos


def test_tidal_buildup_memos_close_the_report() -> None:
    result = load_reference_run("10_timeseries_tpb_hourly")
    assert result.tidal.was_run and result.case_count == 8
    lines = result.text_report().splitlines()
    memos = list(result.tidal.memos)
    assert memos[0].startswith("Highest buildup of concentration: ")
    # after the last case: an empty line, a rule, an empty line, the tpb memos (legacy §5.5 part 3)
    assert lines[-len(memos) - 3:] == ["", RULE, "", *memos]
    assert lines.index(memos[0]) > max(i for i, line in enumerate(lines) if line.startswith("Case 8 "))
    assert f"{result.tidal.highest:.2e}" in memos[0]
    assert "Farfield dispersion" not in "\n".join(lines)
    # no buildup section when TPB is off
    assert "Highest buildup" not in load_reference_run("07_brooks_farfield_4_3").text_report()


def test_report_reads_time_series_from_files(tmp_path) -> None:
    """A series given as a file is listed with its rows and indices like an inline one."""
    (tmp_path / "flow.csv").write_text("0.04\n0.05\n0.06\n")
    case = {"name": "file series", "model": {"write_step_freq": 100},
            "diffuser": {"values": {"diameter": 0.2, "depth": 20.0, "vertical_angle": 30.0, "acute_mixing_zone": 100.0,
                                    "salinity": 1.0, "temperature": 20.0, "concentration": 1e-4}, "units": {}},
            "ambient": {"units": {}, "layers": [
                {"z": 0.0, "current_speed": 0.1, "current_dir": 0.0, "salinity": 33.0, "temperature": 15.0},
                {"z": 30.0, "salinity": 33.5, "temperature": 12.0}]},
            "timeseries": {"start_time": 0, "end_time": 4, "time_increment": 1, "units": "hr",
                           "diffuser": {"effluent_flow": {"increment_hours": 1, "file": "flow.csv"}}}}
    (tmp_path / "case.json").write_text(json.dumps(case))
    report = vp.run(tmp_path / "case.json").text_report()
    assert "cycling period: 3 -> 3.0 hrs" in report
    assert [line for line in report.splitlines() if line.startswith("Timeseries indices:")] == [
        f"Timeseries indices: {row}" for row in (0, 1, 2, 0, 1)]
