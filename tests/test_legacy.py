"""The legacy wire format (vp_jupyter.legacy, legacy-http-api.md): requests -> Case, Result -> the double-encoded
body, the error and health bodies, the zip archive, and the project decisions of §8.

The examples, captured browser requests and Appendix A are read in place from ../shared/spec (skipped when absent).
"""
from __future__ import annotations

import copy
import csv
import email
import email.policy
import io
import json
import math
import pickle
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vp_jupyter as vp
from vp_jupyter import legacy
from vp_jupyter.engine.series import run_series
from vp_jupyter.inputs import CaseError
from vp_jupyter.results import Result

from builders import decode_twice
from conftest import SPEC, require_shared

EXAMPLES = SPEC / "examples"
RUN_ID = "20250101T000000Z-4f9c2a7d1e6b4c0a9d3e5f7a1b2c4d6e"
DIFFUSER_PREFIX = "Error loading diffuser parameter input, please check input and re-run analysis."
STORE_PREFIX = "Error loading diffuser store options, please check options."
MODEL_PREFIX = "Error loading model parameter input, please check Model Selection settings."
AMBIENT_PREFIX = ("Error loading ambient condition input options and/or data, please check ambient condition "
                  "tabs.")
DIFFUSER_SERIES_PREFIX = "Error loading diffuser time series data, please check time series file data."
AMBIENT_SERIES_PREFIX = "Error loading ambient time series data, please check ambient time series file data."
# the series the front end reads (frontend-client.md §b): coords of 15, axis texts of 6
UI_COORDS = ("dilution", "cldilution", "path", "out1", "out2", "pathv", "trajectory", "boundary1", "boundary2",
             "ambdensity", "density", "concentration", "mzconcentration", "enddilution", "mzdilution")
UI_AXES = ("dilution", "path", "trajectory", "ambdensity", "concentration", "enddilution")
TOP_KEYS = ["success", "error", "errortraceback", "cases", "casetime", "modelparams", "timeseries", "diffuser",
            "ambient", "plume", "farfield", "tpb", "graphs", "text_outputs", "output_id"]


# ------------------------------------------------------------------------------------------ helpers

def example_data(number: int) -> dict:
    return json.loads(require_shared(EXAMPLES / f"example{number}.projectData.json").read_text(encoding="utf-8"))


def example_files(number: int) -> dict[str, bytes]:
    """The CSV parts of an example: file name minus `exampleN.` and `.csv` is the part name."""
    require_shared(EXAMPLES)
    prefix = f"example{number}."
    return {p.name[len(prefix):-len(".csv")]: p.read_bytes() for p in EXAMPLES.glob(f"{prefix}*-file.csv")}


def parse(data: dict, files: "dict[str, bytes] | None" = None):
    return legacy.parse_run_request({"projectData": json.dumps(data)}, files or {})


def parse_example(number: int):
    return parse(example_data(number), example_files(number))


def refused(data: "dict | str", files: "dict | None" = None) -> str:
    """The LegacyError message of a refused request (and nothing else may be raised)."""
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(legacy.LegacyError) as err:
        legacy.parse_run_request({"projectData": text}, files or {})
    message = str(err.value)
    assert message and message == err.value.message
    return message


_RESULTS: dict[int, Result] = {}


def example_result(number: int) -> Result:
    if number not in _RESULTS:
        _RESULTS[number] = vp.run(parse_example(number))
    return _RESULTS[number]


def tidal_variant() -> dict:
    """§10 "Tidal variant" of Example 2."""
    data = example_data(2)
    data["modelConfigType"] = "tidal"
    data["tidalPollutantBuildup"] = {"channel_width": "100", "segment_length": "50", "upstream_dir": "90",
                                     "coast_bin": "65", "coast_concentration": "0", "mixing_zone_ceil": "3"}
    return data


def appendix_a() -> str:
    text = require_shared(SPEC / "legacy-http-api.md").read_text(encoding="utf-8")
    return text.split("## Appendix A", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]


def appendix_excerpt(name: str, line: int) -> str:
    """One of the archive lines quoted under Appendix A ("`01.plume.csv` line 2 is `…`")."""
    text = require_shared(SPEC / "legacy-http-api.md").read_text(encoding="utf-8").split("## Appendix A", 1)[1]
    marker = f"`{name}` line {line} is `"
    return text.split(marker, 1)[1].split("`", 1)[0]


def same_cells(ours: str, legacy_line: str) -> bool:
    """CSV lines equal cell by cell, numbers within the Appendix A tolerance (relative 1e-12)."""
    a, b = next(csv.reader([ours])), next(csv.reader([legacy_line]))
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            if x != y:
                return False
        else:
            if not math.isclose(fx, fy, rel_tol=1e-12, abs_tol=1e-12):
                return False
    return True


def unzip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


# ----------------------------------------------------------------------------- examples of §10 (success)

EXPECTED = {  # §10 "Expected result (observed on the original back end)"
    1: dict(cases=1, casetime=[0], diffuser=13, ambient=8, step=539, status="stop dilution reached",
            dilution=10003.16, farfield=False, members=5),
    2: dict(cases=1, casetime=[0], diffuser=14, ambient=11, step=646, status="local maximum rise or fall",
            dilution=392.76, farfield=True, members=6),
    3: dict(cases=4, casetime=[0.0, 3600.0, 7200.0, 10800.0], diffuser=13, ambient=8, step=481, status="surface",
            dilution=None, farfield=False, members=14),
}


@pytest.mark.parametrize("number", [1, 2, 3])
def test_examples_parse_run_and_decode_twice_with_the_documented_keys(number) -> None:
    expected = EXPECTED[number]
    result = example_result(number)
    decoded = decode_twice(legacy.success_body(result, RUN_ID))
    assert list(decoded) == TOP_KEYS                                  # §5.2, in the emitted order
    assert decoded["success"] is True and decoded["error"] is None and decoded["errortraceback"] is None
    assert decoded["cases"] == expected["cases"]
    assert decoded["casetime"] == expected["casetime"]
    assert [type(t) for t in decoded["casetime"]] == [type(t) for t in expected["casetime"]]   # [0] is an int
    assert decoded["output_id"] == RUN_ID                             # Q7: a string
    assert len(decoded["diffuser"]["headers"]) == expected["diffuser"]
    assert len(decoded["ambient"]["headers"]) == expected["ambient"]
    assert len(decoded["plume"]["headers"]) == 14                     # Q6
    for block in ("diffuser", "ambient"):
        for header in decoded[block]["headers"]:
            assert set(header) == {"name", "label", "units", "in_units", "units_label"}
    for header in decoded["plume"]["headers"]:
        assert set(header) == {"regime", "name", "label", "units", "in_units", "units_label"}
    assert [h["units_label"] for h in decoded["plume"]["headers"]][11:13] == ["ft", "ft"]   # Q6: X/Y in ft
    last = decoded["plume"]["outputs"][-1][-1]
    assert set(last) == {"step", "values", "status"} and len(last["values"]) == 14
    assert last["step"] == expected["step"] and last["status"] == expected["status"]
    if expected["dilution"] is not None:
        assert last["values"][10] == pytest.approx(expected["dilution"], abs=0.01)
    assert len(decoded["plume"]["memos"]) == len(decoded["plume"]["postmemos"]) == expected["cases"]
    assert len(decoded["diffuser"]["outputs"]) == len(decoded["ambient"]["outputs"]) == expected["cases"]
    assert decoded["farfield"]["was_run"] is expected["farfield"]
    assert decoded["tpb"] == {"was_run": False, "memos": []}
    assert isinstance(decoded["text_outputs"], str) and decoded["text_outputs"].endswith("\n")
    assert decoded["modelparams"]["memos"][:3] == ["-" * 51, "Model Parameters", "-" * 51]
    assert len(legacy.archive_members(result, RUN_ID)) == expected["members"]


def test_success_body_encoding_is_the_legacy_double_encoding() -> None:
    """§5.1: a JSON string whose content is Python-default JSON (", " / ": ", ASCII escapes); Q4: no NaN."""
    body = legacy.success_body(example_result(1), RUN_ID)
    assert body.startswith('"{\\"success\\": true, \\"error\\": null, \\"errortraceback\\": null, \\"cases\\": 1')
    assert body.isascii()                                             # "°C" is \u00b0 inside, escaped again
    inner = json.loads(body)
    assert "\\u00b0C" in inner and "°C" not in inner
    assert "NaN" not in inner and "Infinity" not in inner
    assert json.loads(inner) == json.loads(json.dumps(legacy.success_object(example_result(1), RUN_ID)))


def test_example2_brooks_far_field_block() -> None:
    decoded = legacy.success_object(example_result(2), RUN_ID)
    farfield = decoded["farfield"]
    assert len(farfield["headers"]) == 11
    assert [h["label"] for h in farfield["headers"]][:5] == ["Time", "Current speed", "Current direction",
                                                             "Width", "Distance"]
    assert farfield["headers"][-1]["label"] == "Eddy diffusivity"      # farfieldDiffusivity CONSTANT
    assert farfield["headers"][0]["units_label"] == "hr"
    rows = farfield["outputs"][0]
    assert rows and all(set(r) == {"step", "values"} and len(r["values"]) == 11 for r in rows)
    assert farfield["memos"][0][0].startswith("Const Eddy Diffusivity.")
    labels = [h["label"] for h in decoded["ambient"]["headers"]]
    assert labels[7:10] == ["Far-field speed", "Far-field direction", "Dispersion"]
    assert decoded["ambient"]["headers"][9]["units"] == "EddyDiffusivity"
    assert [h["label"] for h in decoded["diffuser"]["headers"]][6] == "Port spacing"
    # US units are echoed in the user's units (§5.3): port diameter in inches, flow in MGD, temperature in °F
    row = decoded["diffuser"]["outputs"][0]
    assert decoded["diffuser"]["headers"][0]["units_label"] == "in" and row[0] == pytest.approx(6)
    assert decoded["diffuser"]["headers"][12]["units_label"] == "°F" and row[12] == pytest.approx(68)


def test_example3_time_series_cases_follow_the_csv_rows() -> None:
    """§10 Example 3: per-case flow 0.02/0.04/0.05/0.05 MGD and current speed 0.10/0.00, 0.05/0.00, …"""
    decoded = legacy.success_object(example_result(3), RUN_ID)
    assert decoded["timeseries"]["memos"] == [[f"Timeseries indices: {i}, {i}"] for i in range(4)]
    assert [row[9] for row in decoded["diffuser"]["outputs"]] == pytest.approx([0.02, 0.04, 0.05, 0.05])
    speeds = [level[1] for case in decoded["ambient"]["outputs"] for level in case]
    assert speeds == pytest.approx([0.10, 0.00, 0.05, 0.00, 0.20, 0.05, 0.02, 0.00])
    assert "Timeseries Data" in decoded["modelparams"]["memos"]


@pytest.mark.parametrize("number", [1, 2, 3])
def test_every_graph_series_the_ui_reads_has_the_right_shape(number) -> None:
    """§5.4 / frontend-client.md §b: the 17 keys, coords of [x, y] pairs, axis labels where the UI reads them."""
    result = example_result(number)
    graphs = decode_twice(legacy.success_body(result, RUN_ID))["graphs"]
    assert list(graphs) == list(legacy.GRAPH_SERIES)
    for name in UI_COORDS:
        coords = graphs[name]["coords"]
        assert coords, name
        for point in coords:
            assert isinstance(point, list) and len(point) == 2, name
            assert all(v is None or isinstance(v, (int, float)) for v in point), name
    for name in UI_AXES:
        for axis in ("x", "y"):
            units = graphs[name]["units"][axis]
            assert isinstance(units["units_label"], str) and isinstance(units["axis_label"], str), (name, axis)
    for name in ("custom1", "custom2"):
        assert graphs[name] == {"coords": [], "units": {"x": None, "y": None}}
    cases = result.case_count
    for name in ("enddilution", "mzdilution", "concentration", "mzconcentration"):
        assert [p[0] for p in graphs[name]["coords"]] == list(range(1, cases + 1))    # x = case number
    shown = min(cases, legacy.GRAPH_CASE_LIMIT)
    assert graphs["trajectory"]["coords"].count([None, None]) == shown - 1              # a break between cases
    rows = len(result.outputs[0].steps)
    assert len(graphs["trajectory"]["coords"]) >= rows
    first_rows = graphs["dilution"]["coords"][:rows]
    assert [p[1] for p in first_rows] == pytest.approx(list(result.outputs[0].columns["dilution"]))
    assert graphs["enddilution"]["coords"][-1][1] == pytest.approx(result.outputs[-1].columns["dilution"][-1])
    assert graphs["trajectory"]["units"]["x"]["axis_label"] == "Distance from Origin"
    assert graphs["trajectory"]["units"]["y"]["axis_label"] == "Depth"
    assert graphs["path"]["units"]["x"]["axis_label"] == "West-East"


def test_text_outputs_of_example1_is_appendix_a_exactly() -> None:
    """Q13 / Appendix A: the project's engine reproduces Example 1 to the printed digits, so the whole text
    (58 lines, trailing `;  ` and the `Froude No` trailing space included) must be identical."""
    text = legacy.success_object(example_result(1), RUN_ID)["text_outputs"]
    assert text.splitlines() == appendix_a().splitlines()
    assert text == appendix_a()


# ------------------------------------------------------------------------------------------ archive

def test_example1_archive_matches_the_appendix_excerpts() -> None:
    """§6.3 and the Appendix A excerpts. Numbers are compared with the relative 1e-12 tolerance the spec asks
    for (the engine gives e.g. 100.0 where the legacy conversion round trip gave 99.99999999999999)."""
    archive = unzip(legacy.archive_bytes(example_result(1), RUN_ID))
    stem = f"output_{RUN_ID}"
    text = {name: archive.read(name).decode("utf-8") for name in archive.namelist()}
    diffuser = text[f"{stem}.diffuser.csv"].split("\r\n")
    assert diffuser[0].startswith("Case,Port diameter (m),")
    assert same_cells(diffuser[1], appendix_excerpt("diffuser.csv", 2))
    ambient = text[f"{stem}.01.ambient.csv"].split("\r\n")
    assert ambient[0] == appendix_excerpt("01.ambient.csv", 1)
    plume = text[f"{stem}.01.plume.csv"].split("\r\n")
    assert plume[0] == appendix_excerpt("01.plume.csv", 1)
    assert same_cells(plume[1], appendix_excerpt("01.plume.csv", 2))
    assert plume[1].endswith(",")                                     # the unlabelled, empty status cell
    assert plume[-2].endswith(",stop dilution reached") and plume[-1] == ""
    params = text[f"{stem}.params.txt"]
    assert params == "\n".join(legacy.success_object(example_result(1), RUN_ID)["modelparams"]["memos"]) + "\n"
    memos = text[f"{stem}.01.memos.txt"].split("\n")
    assert memos[:4] == ["-" * 51, "Case 1 (+0.00 hrs):", "-" * 51, ""]
    assert memos[4] == "Froude No:    9.62 " and "Lmz(m):     9.46" in memos


@pytest.mark.parametrize("kind, count, extra", [
    ("plain", 5, None), ("brooks", 6, "01.farfield.csv"), ("tidal", 6, "tpb.txt"), ("series", 14, None)])
def test_archive_members_and_counts(kind, count, extra) -> None:
    """§6.3 file counts: plain 5, Brooks 6, tidal 6, four time-series cases 2 + 3 × 4 = 14; CRLF CSVs."""
    result = {"plain": lambda: example_result(1), "brooks": lambda: example_result(2),
              "tidal": lambda: vp.run(parse(tidal_variant())), "series": lambda: example_result(3)}[kind]()
    data = legacy.archive_bytes(result, RUN_ID)
    archive = unzip(data)
    names = archive.namelist()
    assert names == legacy.archive_members(result, RUN_ID)
    assert len(names) == count == len(set(names))
    stem = f"output_{RUN_ID}"
    assert all(name.startswith(stem + ".") and "/" not in name for name in names)
    assert {f"{stem}.params.txt", f"{stem}.diffuser.csv"} <= set(names)
    for number in range(1, result.case_count + 1):
        for suffix in ("ambient.csv", "memos.txt", "plume.csv"):
            assert f"{stem}.{number:02d}.{suffix}" in names
    if extra:
        assert f"{stem}.{extra}" in names
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_DEFLATED
        body = archive.read(info)
        if info.filename.endswith(".csv"):
            assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")   # CRLF only
            assert not body.startswith(b"\xef\xbb\xbf")                                  # no BOM
        else:
            assert b"\r" not in body
    if kind == "tidal":
        tpb = archive.read(f"{stem}.tpb.txt").decode()
        assert tpb == "\n".join(result.tidal.memos) and not tpb.endswith("\n")      # no trailing newline
        assert legacy.success_object(result, RUN_ID)["tpb"]["was_run"] is True
    if kind == "brooks":
        farfield = archive.read(f"{stem}.01.farfield.csv").decode().split("\r\n")
        assert farfield[0].startswith("Time (hr),Current speed (ft/s),")              # no step column
        assert len(next(csv.reader([farfield[1]]))) == 11
    if kind == "series":
        diffuser = archive.read(f"{stem}.diffuser.csv").decode().split("\r\n")
        assert [line.split(",")[0] for line in diffuser[1:5]] == ["1", "2", "3", "4"]
        memos = archive.read(f"{stem}.03.memos.txt").decode().split("\n")
        assert memos[1] == "Case 3 (+2.00 hrs):" and memos[3] == "Timeseries indices: 2, 2"


def test_archive_case_numbers_are_padded_to_the_digits_of_the_case_count() -> None:
    """Q8: width = digits of the case count, at least 2 (legacy gave 100 cases a width of 2)."""
    data = example_data(3)
    data["diffuserData"][0]["end_time"] = "99"                       # 0 … 99 h: 100 cases
    case = parse(data, example_files(3))
    assert len(case.case_times) == 100
    engine_cases = case.engine_cases()
    first = run_series(engine_cases[:1]).plumes[0]                    # one run stands in for every case
    result = Result(case, [first] * 100, engine_cases)
    names = legacy.archive_members(result, RUN_ID)
    assert len(names) == 2 + 3 * 100
    assert f"output_{RUN_ID}.001.plume.csv" in names and f"output_{RUN_ID}.100.plume.csv" in names
    assert not any(f"output_{RUN_ID}.01.{s}" in names for s in ("ambient.csv", "memos.txt", "plume.csv"))
    plumes = [n for n in names if n.endswith(".plume.csv")]
    assert sorted(plumes) == plumes                                   # "100" sorts after "099" now
    single = legacy.archive_members(example_result(1), RUN_ID)
    assert f"output_{RUN_ID}.01.plume.csv" in single                  # at least 2 digits


def test_archive_rejects_run_ids_that_are_not_flat_names() -> None:
    for bad in ("../x", "a/b", "", "a\\b", ".hidden"):
        with pytest.raises(ValueError):
            legacy.archive_members(example_result(1), bad)
    assert legacy.archive_filename(RUN_ID) == f"output_{RUN_ID}.zip"
    assert legacy.content_disposition(RUN_ID) == f'attachment; filename="output_{RUN_ID}.zip"'


# ------------------------------------------------------------------------ captured browser requests

def multipart_parts(raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Text parts and real file parts (those with a filename) of a raw multipart/form-data body."""
    boundary = raw.split(b"\r\n", 1)[0][2:]
    head = b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n"
    message = email.message_from_bytes(head + raw, policy=email.policy.HTTP)
    assert message.is_multipart()
    form, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename() is not None:
            files[name] = payload
        else:
            form[name] = payload.decode("utf-8")
    return form, files


def captured_scenario(name: str) -> dict:
    data = json.loads(require_shared(EXAMPLES / "captured-run-request.json").read_text(encoding="utf-8"))
    return data["scenarios"][name]


def scenario_parts(name: str) -> tuple[dict[str, str], dict[str, bytes]]:
    scenario = captured_scenario(name)
    parts = (scenario.get("server_side") or scenario["browser_side"])["parts"]
    form, files = {}, {}
    for part in parts:
        value = part["value"]
        if part.get("filename"):
            files[part["name"]] = value.encode("utf-8")
        else:
            form[part["name"]] = value if isinstance(value, str) else json.dumps(value)
    return form, files


def test_captured_defaults_body_is_refused_with_a_legacy_error_naming_the_fields() -> None:
    """frontend-client.md §c: "Run with defaults" sends an empty case; the answer is a clean error object."""
    form, files = multipart_parts(require_shared(EXAMPLES / "captured-defaults.multipart.txt").read_bytes())
    assert files == {} and len(form) == 15
    assert sum(value == "null" for value in form.values()) == 14     # the FormData "null" text parts
    with pytest.raises(legacy.LegacyError) as err:
        legacy.parse_run_request(form, files)
    message = str(err.value)
    assert message.startswith(DIFFUSER_PREFIX)
    assert "Port diameter is required (diffuserData[0].port_diameter = '')" in message
    assert "ambientProfileData[0].data" in message
    assert json.loads(legacy.error_body(message)) == {"success": False, "error": message}
    scenario_form, _ = scenario_parts("defaults")                     # the JSON capture holds the same request
    assert json.loads(scenario_form["projectData"]) == json.loads(form["projectData"])


def test_captured_tutorial_body_is_accepted_and_runs() -> None:
    form, files = multipart_parts(require_shared(EXAMPLES / "captured-tutorial.multipart.txt").read_bytes())
    assert files == {} and form["effluent_flow-diffuser-file"] == "null"
    case = legacy.parse_run_request(form, files)
    assert len(case.case_times) == 1
    result = vp.run(case)
    decoded = decode_twice(legacy.success_body(result, RUN_ID))
    last = decoded["plume"]["outputs"][0][-1]
    assert last["status"] == "stop dilution reached" and last["values"][10] == pytest.approx(10003.16, abs=0.01)
    scenario_form, _ = scenario_parts("tutorial_single_port")
    assert json.loads(scenario_form["projectData"]) == json.loads(form["projectData"])


def test_captured_time_series_scenario_needs_its_time_settings() -> None:
    """Scenario `tutorial_with_timeseries_files`: the UI sent two CSV files but left start/end/increment empty.
    With files the time settings are required (§2.9, legacy: "start time is empty"); filled in, it runs."""
    form, _ = scenario_parts("tutorial_single_port")
    changes_form, files = scenario_parts("tutorial_with_timeseries_files")
    assert set(files) == {"effluent_flow-diffuser-file", "current_speed-ambient-file"}
    data = json.loads(form["projectData"])
    for dotted, value in json.loads(changes_form["projectData"]).items():
        if dotted.startswith("_"):
            continue
        top, key = dotted.split(".")
        data[top][key] = value
    message = refused(data, files)
    assert message.startswith("Error processing diffuser time series files")
    assert "Start time is empty (diffuserData[0].start_time = '')" in message
    assert "diffuserData[0].end_time" in message and "diffuserData[0].time_increment" in message
    data["diffuserData"][0].update(start_time="0", end_time="3", time_increment="1")
    for key in ("start_time", "end_time", "time_increment"):
        data["diffuserStore"][key]["value"] = "hr"
    case = parse(data, files)
    assert case.case_times == [0.0, 3600.0, 7200.0, 10800.0]
    assert [s["variable"] for s in case.series_info()] == ["effluent_flow", "current_speed"]
    assert case.series_info()[1]["levels"] == [0.0, 12.0]


def test_null_text_parts_and_extra_parts_are_ignored() -> None:
    form = {"projectData": json.dumps(example_data(1)), "effluent_flow-diffuser-file": "null",
            "current_speed-ambient-file": "null"}
    assert len(legacy.parse_run_request(form, {}).case_times) == 1
    # bytes values are UTF-8; a part of an unknown field or kind is ignored, as by the legacy back end
    files = {"salinity_typo-diffuser-file": b"1\n2\n", "current_speed-other-file": b"x"}
    case = legacy.parse_run_request({"projectData": json.dumps(example_data(1)).encode()}, files)
    assert case.timeseries is None and len(case.case_times) == 1


# ---------------------------------------------------------------------------------------- bad input

def test_malformed_project_data_gives_a_legacy_error() -> None:
    assert "projectData is not valid JSON" in refused("{not json")
    assert "projectData must be a JSON object (got an array)" in refused("[1, 2]")
    assert "projectData must be a JSON object (got null)" in refused("null")
    with pytest.raises(legacy.LegacyError) as err:
        legacy.parse_run_request({"effluent_flow-diffuser-file": "null"}, {})
    assert "projectData is missing" in str(err.value)
    with pytest.raises(legacy.LegacyError) as err:
        legacy.parse_run_request({"projectData": b"\xff\xfe{"}, {})
    assert "projectData is not UTF-8" in str(err.value)


@pytest.mark.parametrize("remove, named", [
    (lambda d: d.pop("writeStepFreq"), "writeStepFreq is missing"),
    (lambda d: d["tidalPollutantBuildup"].pop("coast_bin"), "tidalPollutantBuildup.coast_bin is missing"),
    (lambda d: d["diffuserStore"]["port_depth"].pop("value"), "diffuserStore.port_depth.value is missing"),
    (lambda d: d["diffuserData"][0].pop("effluent_flow"), "diffuserData[0].effluent_flow is missing"),
    (lambda d: d["ambientProfileData"][0]["store"].pop("current_speed"),
     "ambientProfileData[0].store.current_speed is missing"),
    (lambda d: d["ambientProfileData"][0]["data"][1].pop("ambient_salinity"),
     "ambientProfileData[0].data[1].ambient_salinity is missing"),
    (lambda d: d.update(ambientProfileData=[]), "ambientProfileData must be a non-empty array"),
    (lambda d: d.update(diffuserData=[]), "diffuserData must be a non-empty array"),
    (lambda d: d.update(diffuserStore="m"), "diffuserStore must be an object"),
])
def test_missing_or_malformed_required_keys_name_the_key(remove, named) -> None:
    """§2.9 presence rules; Q17: keys that gave HTTP 500 in the legacy back end give the JSON error too."""
    data = example_data(2)
    remove(data)
    assert named in refused(data)


def test_the_q16_example_message_is_reproduced_exactly() -> None:
    data = example_data(1)
    data["diffuserData"][0]["port_diameter"] = "-1"
    assert refused(data) == f"{DIFFUSER_PREFIX} Port diameter must be > 0 (diffuserData[0].port_diameter = '-1')"


def test_non_numeric_value_names_the_field_and_value() -> None:
    data = example_data(1)
    data["diffuserData"][0]["port_depth"] = "deep"
    assert refused(data) == f"{DIFFUSER_PREFIX} Port depth must be a number (diffuserData[0].port_depth = 'deep')"
    data = example_data(1)
    data["writeStepFreq"] = "10.5"
    message = refused(data)
    assert message.startswith(MODEL_PREFIX) and "(writeStepFreq = '10.5')" in message
    data = example_data(1)
    data["ambientProfileData"][0]["data"][0]["ambient_salinity"] = "salty"
    message = refused(data)
    assert message.startswith(AMBIENT_PREFIX)
    assert "Ambient salinity must be a number (ambientProfileData[0].data[0].ambient_salinity = 'salty')" in message


@pytest.mark.parametrize("where, value, prefix, path", [
    ("port_diameter", "furlongs", STORE_PREFIX, "diffuserStore.port_diameter.value"),
    ("port_depth", "ppm", STORE_PREFIX, "diffuserStore.port_depth.value"),          # wrong category
    ("effluent_flow", "", STORE_PREFIX, "diffuserStore.effluent_flow.value"),       # empty (Q5)
    ("isopleth_val", "pressure", STORE_PREFIX, "diffuserStore.isopleth_val.value"),
    ("current_speed", "furlongs/fortnight", AMBIENT_PREFIX, "ambientProfileData[0].store.current_speed.mu"),
    ("depth_or_height", "meterz", AMBIENT_PREFIX, "ambientProfileData[0].store.depth_or_height.mu"),
])
def test_bad_unit_strings_name_the_field_and_the_string(where, value, prefix, path) -> None:
    """Q5: unknown, empty or wrong-category unit strings are errors naming the field and the allowed units."""
    data = example_data(1)
    if path.startswith("diffuserStore"):
        data["diffuserStore"][where]["value"] = value
    else:
        data["ambientProfileData"][0]["store"][where]["mu"] = value
    message = refused(data)
    assert message.startswith(prefix)
    assert f"({path} = {value!r})" in message
    assert "expected one of" in message


def test_legitimate_ui_unit_strings_are_accepted() -> None:
    """Q5: the strings the UI sends stay valid, including the aliases kt, N-deg and N-rad."""
    data = example_data(1)
    store = data["ambientProfileData"][0]["store"]
    store["current_speed"]["mu"] = "kt"
    store["current_direction"]["mu"] = "N-deg"
    store["far_field_curr_dir"]["mu"] = "N-rad"
    data["diffuserStore"]["num_of_ports"]["value"] = ""
    data["diffuserStore"]["port_diameter"]["value"] = "fath"
    case = parse(data)
    assert case.ambient_units["current_speed"].name == "KNOTS"
    assert case.ambient_units["current_dir"].name == "N_DEGREES"
    assert case.ambient_units["ff_dir"].name == "N_RADIANS"
    assert case.diffuser_units["diameter"].name == "FATHOMS"
    assert case.ambient_units["ff_diff_coeff"].label == "m0.67/s2"


def test_bad_csv_parts_name_the_part_and_line() -> None:
    data, files = example_data(3), example_files(3)
    message = refused(data, {**files, "effluent_flow-diffuser-file": b"flow\n0.02\n0.04\n"})
    assert message.startswith(DIFFUSER_SERIES_PREFIX)
    assert "effluent_flow-diffuser-file line 1: must be a number (got 'flow') in column 1" in message
    message = refused(data, {**files, "current_speed-ambient-file": b"0\n0.1\n"})
    assert message.startswith(AMBIENT_SERIES_PREFIX) and "current_speed-ambient-file line 1" in message
    message = refused(data, {**files, "current_speed-ambient-file": b"0,50\n0.1\n"})
    assert "current_speed-ambient-file line 2" in message
    message = refused(data, {**files, "effluent_flow-diffuser-file": b"0.02\n\xff\n"})
    assert "effluent_flow-diffuser-file: the file is not UTF-8 text" in message
    message = refused(data, {**files, "foo": b"1\n2\n"})
    assert message.startswith("Error processing diffuser time series files") and "'foo'" in message


def test_time_series_metadata_rules() -> None:
    data, files = example_data(3), example_files(3)
    data["diffuserTimeSeries"]["effluent_flow"]["increment"] = "1.5"        # Q11: fractional hours
    case = parse(data, files)
    assert case.series_info()[0]["increment_hours"] == 1.5
    data["diffuserTimeSeries"]["effluent_flow"]["increment"] = 0
    message = refused(data, files)
    assert message.startswith(DIFFUSER_SERIES_PREFIX)
    assert "(diffuserTimeSeries.effluent_flow.increment = 0)" in message
    data = example_data(3)
    del data["ambientFiles"]["current_speed"]
    assert "ambientFiles.current_speed is missing" in refused(data, files)
    data = example_data(3)
    data["diffuserData"][0]["start_time"] = ""
    assert "Start time is empty (diffuserData[0].start_time = '')" in refused(data, files)
    data = example_data(3)
    data["diffuserData"][0]["end_time"] = "1e9"
    message = legacy_error_with_limit(data, files, 1000)
    assert "too many cases" in message and "diffuserData[0].start_time, end_time, time_increment" in message
    data = example_data(3)        # the series' measurement_unit replaces the table unit (§2.7, §3.6)
    data["ambientFiles"]["current_speed"]["measurement_unit"] = "cm/s"
    case = parse(data, files)
    assert case.ambient_units["current_speed"].label == "cm/s"


def legacy_error_with_limit(data: dict, files: dict, limit: int) -> str:
    with pytest.raises(legacy.LegacyError) as err:
        legacy.parse_run_request({"projectData": json.dumps(data)}, files, max_cases=limit)
    return str(err.value)


def test_port_depth_series_works() -> None:
    """Q12: a port_depth series sets the port depth per case (legacy: a library crash)."""
    data, files = example_data(3), example_files(3)
    data["diffuserTimeSeries"]["port_depth"] = {"measurement_unit": "m", "increment": "1"}
    files = {**files, "port_depth-diffuser-file": b"49\n48\n47\n"}
    result = vp.run(parse(data, files))
    decoded = legacy.success_object(result, RUN_ID)
    assert [row[8] for row in decoded["diffuser"]["outputs"]] == pytest.approx([49, 48, 47, 49])
    assert decoded["timeseries"]["memos"][3] == ["Timeseries indices: 0, 3, 3"]


# --------------------------------------------------------------------------------- §8 decisions, §2 rules

@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), (False, False), ("false", False),
                                             ("", False), (None, False)])
def test_booleans_follow_q1(value, expected) -> None:
    data = example_data(1)
    for key in ("stopOnBottomHit", "dontStopOnSurfaceHit", "allowInducedCurrent", "reportEffectiveDillution",
                "currentVectorAveraging", "estimateFarfieldBackground", "outputAllFarfieldTimeIncrements"):
        data[key] = value
    model = parse(data).model
    assert model.stop_on_bottom_hit is model.dont_stop_on_surface_hit is model.allow_induced_current is expected
    assert model.report_effective_dillution is model.current_vector_averaging is expected
    assert model.estimate_ff_background is model.output_all_ff_increments is expected


@pytest.mark.parametrize("key", ["stopOnBottomHit", "useShoreVector", "reportEffectiveDillution"])
def test_other_boolean_values_are_errors_naming_the_field(key) -> None:
    data = example_data(1)
    data[key] = "yes"
    message = refused(data)
    assert message.startswith(MODEL_PREFIX) and f"must be true or false ({key} = 'yes')" in message
    data = example_data(1)
    data["ambientProfileData"][0]["store"]["depth_or_height"]["z_is_depth"] = 1
    assert "(ambientProfileData[0].store.depth_or_height.z_is_depth = 1)" in refused(data)


@pytest.mark.parametrize("value, expected", [("CONSTANT", "CONSTANT"), ("POWER_4_3", "POWER_4_3"),
                                             ("", "POWER_4_3")])
def test_farfield_diffusivity_follows_q3(value, expected) -> None:
    data = example_data(2)
    data["farfieldDiffusivity"] = value
    assert parse(data).model.farfield_diffusivity == expected


def test_unknown_farfield_diffusivity_is_an_error_naming_it() -> None:
    data = example_data(2)
    data["farfieldDiffusivity"] = "LINEAR"
    message = refused(data)
    assert message.startswith(MODEL_PREFIX) and "(farfieldDiffusivity = 'LINEAR')" in message
    assert "'CONSTANT'" in message and "'POWER_4_3'" in message


def test_q3_power_law_runs_and_labels_the_far_field_column() -> None:
    data = example_data(2)
    data["farfieldDiffusivity"] = "POWER_4_3"
    decoded = legacy.success_object(vp.run(parse(data)), RUN_ID)
    assert decoded["farfield"]["headers"][-1]["label"] == "4/3 eddy diffusivity"
    assert decoded["farfield"]["memos"][0][0].startswith("4/3 Power Law.")


def test_extrapolation_choices_follow_q10() -> None:
    data = example_data(1)
    store = data["ambientProfileData"][0]["store"]
    store["ambient_salinity"].update(e_sfc="extrapolated", e_btm="linear_to_zero")
    del store["current_speed"]["e_sfc"]                               # missing: constant
    case = parse(data)
    assert case.ambient.extrapolation["salinity"] == {"surface": "EXTRAPOLATED", "bottom": "LINEAR_TO_ZERO"}
    assert case.ambient.extrapolation["current_speed"]["bottom"] == "CONSTANT"
    assert "surface" not in case.ambient.extrapolation["current_speed"] or \
        case.ambient.extrapolation["current_speed"]["surface"] == "CONSTANT"
    store["ambient_temperature"]["e_btm"] = "disabled"                # only depth_or_height may say disabled
    message = refused(data)
    assert message.startswith(AMBIENT_PREFIX)
    assert "(ambientProfileData[0].store.ambient_temperature.e_btm = 'disabled')" in message


def test_model_options_and_enums() -> None:
    data = example_data(1)
    data.update(bacterialModelValue="enterococcus", similarityProfile="power", eqOfState="p_S-T",
                maxReverals="INITIAL_TRAP_LEVEL", modelConfigType="none")
    model = parse(data).model
    assert model.bacteria_model == "ENTEROCCOUS_301H" and model.similarity_profile == "POWER_3_2"
    assert model.at_equilibrium is False and model.max_reversals == "INITIAL_TRAP_LEVEL"
    data["similarityProfile"] = "whatever"                            # §2.2: anything else is the default
    assert parse(data).model.similarity_profile == "DEFAULT"
    for key, value in (("bacterialModelValue", "ecoli"), ("maxReverals", ""), ("maxReverals", None)):
        bad = copy.deepcopy(data)
        bad[key] = value
        assert f"({key} = {json.dumps(value) if value is None else repr(value)})".replace("None", "null") \
            in refused(bad).replace("None", "null")


def test_empty_values_follow_the_legacy_rules() -> None:
    """§2.1 / §2.4 / §2.10: which empty values are errors and which keep a default."""
    data = example_data(1)
    data.update(diffPortContCoeff="", lightAbsorpCoeff=None, um3AspCoeff="")
    model = parse(data).model
    assert (model.contraction_coeff, model.light_absorb_coeff, model.aspiration_coeff) == (1.0, 0.16, 0.1)
    for key, label in (("writeStepFreq", "Write step frequency"), ("maxDilutionReported", "Maximum dilution reported")):
        bad = example_data(1)
        bad[key] = ""
        assert refused(bad) == f"{MODEL_PREFIX} {label} is empty ({key} = '')"
    data = example_data(1)
    data.update(farfieldCoeff="", distToShore="")                     # not read: Brooks and shore vector off
    assert parse(data).model.brooks_far_field is False
    data = example_data(2)
    data["farfieldCoeff"] = ""
    assert "Far-field increment is empty (farfieldCoeff = '')" in refused(data)
    data = example_data(2)
    data["distToShore"] = ""                                          # Example 2 uses the shore vector
    assert "(distToShore = '')" in refused(data)


def test_tidal_settings_follow_q14() -> None:
    data = tidal_variant()
    data["tidalPollutantBuildup"]["channel_width"] = ""               # '' becomes 100
    model = parse(data).model
    assert model.tidal_pollution_buildup is True and model.tpb_channel_width == 100.0
    assert model.tpb_coast_bin == 65 and model.tpb_mixing_zone_ceil == 3.0
    data["tidalPollutantBuildup"]["coast_bin"] = "0"
    message = refused(data)
    assert message.startswith(MODEL_PREFIX) and "(tidalPollutantBuildup.coast_bin = '0')" in message
    data = tidal_variant()
    data["tidalPollutantBuildup"]["segment_length"] = None           # null is not ''
    assert "(tidalPollutantBuildup.segment_length = null)" in refused(data)
    data = example_data(1)                                            # not tidal: the UI's coast_bin 0 is fine
    assert parse(data).model.tidal_pollution_buildup is False


def test_several_problems_are_grouped_by_stage_in_processing_order() -> None:
    data = example_data(1)
    data["diffuserData"][0]["port_diameter"] = "-1"
    data["ambientProfileData"][0]["data"][0]["ambient_temperature"] = "hot"
    data["diffuserData"][0]["effluent_flow"] = ""
    with pytest.raises(legacy.LegacyError) as err:
        parse(data)
    lines = str(err.value).split("\n")
    assert lines[0].startswith(DIFFUSER_PREFIX) and "Port diameter" in lines[0] and "Effluent flow" in lines[0]
    assert lines[1].startswith(AMBIENT_PREFIX) and "ambient_temperature = 'hot'" in lines[1]
    # the Case also finds the temperature column empty now; the message uses the request's names for it
    assert "no row gives ambient_temperature; give it in at least one row or as a time-series file" in lines[1]
    assert len(lines) == 2 and len(err.value.problems) == 4


# ------------------------------------------------------------------------- bodies and small constants

def test_error_and_health_bodies() -> None:
    assert legacy.health_body() == '{"message": "Success!"}'
    assert legacy.error_body("write step frequency is empty") == \
        '{"success": false, "error": "write step frequency is empty"}'
    assert json.loads(legacy.error_body(""))["error"]                 # Q16: never empty
    assert json.loads(legacy.error_body("°"))["error"] == "°" and legacy.error_body("°").isascii()
    assert legacy.error_message(CaseError(["case 2: concentration must be > 0"])) == \
        "case 2: concentration must be > 0"
    assert legacy.error_message(RuntimeError("boom")) == "RuntimeError: boom"
    assert legacy.error_message(RuntimeError()) == "RuntimeError"
    assert str(legacy.LegacyError("  ")) != ""


def test_endpoint_constants() -> None:
    assert legacy.RUN_ANALYSIS_PATH == "run_analysis" and legacy.DOWNLOAD_ZIP_PATH == "download_zip_archive"
    assert legacy.SUCCESS_CONTENT_TYPE == legacy.ERROR_CONTENT_TYPE == "application/json"
    assert legacy.ZIP_CONTENT_TYPE == "application/zip"
    assert legacy.CORS_ALLOW_HEADERS == \
        "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"
    assert legacy.CORS_ALLOW_METHODS == "DELETE, GET, OPTIONS, PATCH, POST, PUT"
    assert legacy.CORS_MAX_AGE == "86400"
    headers = legacy.preflight_headers("http://localhost:3001")
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:3001"
    assert headers["Access-Control-Allow-Credentials"] == "true" and headers["Vary"] == "Origin"


# --------------------------------------------------------------------------------- property: mutations

def _leaf_paths(value, path=()):
    """Every path into example 1's projectData (objects and arrays), containers included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, path + (index,))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["", "true", "false", "null", "1e400", "-1", "0", "nan", "m", "ppm",
                                              "kt", "brooks", "tidal", "POWER_4_3", "constant", " 2 "]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_mutation_of_example1_gives_a_case_or_a_legacy_error(data) -> None:
    project = example_data(1)
    paths = [p for p in _leaf_paths(project) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = project
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(_JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue                                                  # an earlier mutation removed the path
    try:
        case = parse(project)
    except legacy.LegacyError as err:
        assert err.message.strip() and "Internal error" not in err.message
    else:
        assert case.engine_cases()


_CELLS = st.sampled_from([b"0.1", b"0", b"-1", b"nan", b"inf", b"x", b"", b" 2 ", b"1e400", b"50", b"\xff",
                          b"\xef\xbb\xbf0"])
_CSV = st.lists(st.lists(_CELLS, max_size=4).map(b",".join), max_size=6).map(b"\r\n".join) | st.binary(max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=_CSV, speed=_CSV, increment=st.sampled_from(["1", 0.5, "", None, "x", -1, 1e-9, [1]]))
def test_csv_parts_of_any_content_give_a_case_or_a_legacy_error(flow, speed, increment) -> None:
    data = example_data(3)
    data["ambientFiles"]["current_speed"]["increment"] = increment
    try:
        parse(data, {"effluent_flow-diffuser-file": flow, "current_speed-ambient-file": speed})
    except legacy.LegacyError as err:
        assert err.message.strip() and "Internal error" not in err.message


# --------------------------------------------------------------- headers and tables against the goldens

def golden(name: str) -> dict:
    return json.loads(require_shared(SPEC.parent / "reference" / "golden" / f"{name}.json").read_text())


def reference_result(name: str) -> Result:
    return vp.run(require_shared(SPEC.parent / "reference" / "cases" / f"{name}.json"))


# cases whose diffuser and ambient tables are unaffected by the project's fixes (reference/README.md:
# 03 uses the fixed p,S,T density, 12 the fixed extrapolation modes)
TABLE_CASES = ("01_readme_single_port", "04_buoyant_vertical_surfacing", "05_dense_brine_bottom",
               "06_crossflow_current", "07_brooks_farfield_4_3", "08_brooks_farfield_constant",
               "09_bacteria_decay_isopleth", "10_timeseries_tpb_hourly", "11_units_english_farfield")


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("name", TABLE_CASES)
def test_diffuser_and_ambient_blocks_match_the_reference_tables(name) -> None:
    """The headers (name, label, unit class, in_units code, label) and values of the reference port's
    diffuser and ambient tables, which are what the legacy back end echoed (§5.2, §5.3). The offsets are
    0 in every case; the reference labels their unit m whatever the case says, so their headers are skipped."""
    expected, ours = golden(name), legacy.success_object(reference_result(name), RUN_ID)
    for block, table in (("diffuser", "diffuser_table"), ("ambient", "ambient_table")):
        headers = [h for h in ours[block]["headers"]]
        assert [h["name"] for h in headers] == [h["name"] for h in expected[table]["headers"]]
        for mine, theirs in zip(headers, expected[table]["headers"]):
            if mine["name"] not in ("offset_x", "offset_y"):
                assert mine == theirs
    for mine, theirs in zip(ours["diffuser"]["outputs"], expected["diffuser_table"]["rows"], strict=True):
        assert all(_same(a, b) for a, b in zip(mine, theirs, strict=True)), (mine, theirs)
    for mine, theirs in zip(ours["ambient"]["outputs"], expected["ambient_table"]["rows"], strict=True):
        assert len(mine) == len(theirs)
        for row_a, row_b in zip(mine, theirs):
            assert all(_same(a, b) for a, b in zip(row_a, row_b, strict=True)), (row_a, row_b)


@pytest.mark.parametrize("name", ["07_brooks_farfield_4_3", "08_brooks_farfield_constant",
                                  "11_units_english_farfield", "sejpa_aug2003_withmfro_fakeff"])
def test_far_field_block_matches_the_reference(name) -> None:
    """§5.3 far-field block against the deviation-applied golden (the reference port with the spec §13
    far-field fixes): the same headers, per case the same number of rows with the same steps, and every
    value, in the output units the block declares, within 0.5 %."""
    expected = json.loads(require_shared(SPEC.parent / "reference" / "golden_fixed" / f"{name}.json").read_text())
    ours = legacy.success_object(reference_result(name), RUN_ID)
    assert ours["farfield"]["headers"] == expected["farfield"]["headers"]
    assert ours["farfield"]["was_run"] is True
    assert len(ours["farfield"]["outputs"]) == len(expected["farfield"]["cases"])
    for rows, case in zip(ours["farfield"]["outputs"], expected["farfield"]["cases"]):
        assert len(rows) == len(case["rows"]) > 1
        assert [r["step"] for r in rows] == [r["step"] for r in case["rows"]]
        for mine, theirs in zip(rows, case["rows"]):
            assert mine["values"] == pytest.approx(theirs["values"], rel=5e-3, abs=1e-12)


def test_web_ui_runs_are_named_after_their_project_or_when_they_came() -> None:
    data = json.loads(require_shared(EXAMPLES / "example1.projectData.json").read_text())
    received = 1795624050.0                                       # 2026-11-25 16:27:30 UTC
    plain = legacy.parse_run_request({"projectData": json.dumps(data)}, {}, received=received)
    assert plain.name == "web UI run 2026-11-25 16:27:30 UTC"      # the stock UI sends no project name
    named = legacy.parse_run_request({"projectData": json.dumps({**data, "projectName": "  Outfall\n 7 "})}, {},
                                     received=received)
    assert named.name == "Outfall 7"
    blank = legacy.parse_run_request({"projectData": json.dumps({**data, "projectName": "   ", "name": 3})}, {},
                                     received=received)
    assert blank.name.startswith("web UI run ")
    assert named.engine_cases() == plain.engine_cases()           # the name changes nothing else
    assert len(legacy.ui_run_name({"projectName": "x" * 1000}, received)) == legacy.MAX_UI_NAME


def test_the_case_the_finishing_worker_gets_equals_the_validated_series() -> None:
    """The runner hands its validated Case to the worker that finishes a run pickled in the FinalizeTask
    (no second validation there): it must come back the same case, engine cases and layer tables included."""
    from vp_jupyter.run_worker import FinalizeTask
    from vp_jupyter.store import RunStore

    case = parse_example(3)
    assert len(case.case_times) == 4
    task = FinalizeTask(store=RunStore("unused"), run_id="x", case=case, source="ui", owner="", created=0.0,
                        started=None, make_response=legacy.success_body)
    got = pickle.loads(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)).case
    assert got.to_dict(inline_files=True) == case.to_dict(inline_files=True)
    assert got.engine_cases() == case.engine_cases()
    assert [got.layer_table(i) for i in range(4)] == [case.layer_table(i) for i in range(4)]
    assert (got.case_times, got.diffuser_units, got.ambient_units, got.series_info()) == \
        (case.case_times, case.diffuser_units, case.ambient_units, case.series_info())
    assert legacy.success_body(Result(got, run_series(got.engine_cases(), got.time_step).plumes), RUN_ID) == \
        legacy.success_body(Result(case, run_series(case.engine_cases(), case.time_step).plumes), RUN_ID)
