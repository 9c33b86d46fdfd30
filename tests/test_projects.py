"""Saved web-UI projects ("Save Project Config") as cases: `vp.Case.load`, `vp.run`, `vp-jupyter run` and
`convert`, `vp.CaseForm.from_file`; translated through the legacy package, so a project gives the case and
the rows the web UI's own request for it gives (`../shared/spec/examples/tutorial.project.json` and the
request the UI sent after loading it, `captured-tutorial.multipart.txt`)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

import vp_jupyter as vp
from vp_jupyter import legacy
from vp_jupyter.results import Result

from builders import decode_twice
from conftest import require_shared

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "examples"
PROJECT = EXAMPLES / "tutorial.project.json"
CAPTURED = EXAMPLES / "captured-tutorial.multipart.txt"
SERIES_BLOCKS = ("diffuserTimeSeries", "ambientFiles")   # per-series UI state; the saved file has none


@pytest.fixture
def examples() -> None:
    for path in (PROJECT, CAPTURED):
        require_shared(path)


def captured_body() -> tuple[bytes, str]:
    raw = CAPTURED.read_bytes()
    boundary = raw.split(b"\r\n", 1)[0][2:].decode()
    return raw, f"multipart/form-data; boundary={boundary}"


def captured_project_data() -> dict:
    """The projectData part of the captured request, decoded."""
    raw, _ = captured_body()
    part = raw.split(b'name="projectData"', 1)[1].split(b"\r\n\r\n", 1)[1]
    return json.loads(part.rsplit(b"\r\n--", 1)[0])


def series_project(tmp_path: Path) -> Path:
    """The tutorial project as saved after choosing an effluent-flow file: the UI disables that column and
    enables the time range (hours 0..3)."""
    project = json.loads(PROJECT.read_text())
    table = project["diffuserTable"]
    table["store"]["effluent_flow"]["isEnabled"] = False
    table["data"][0].update(start_time="0", end_time="3", time_increment="1")
    for key in ("start_time", "end_time", "time_increment"):
        table["store"][key]["value"] = "hr"
    path = tmp_path / "hourly.project.json"
    path.write_text(json.dumps(project))
    (tmp_path / "flow.csv").write_text("0.05\n0.06\n0.07\n")
    return path


def test_a_project_becomes_the_request_the_web_ui_sent_for_it(examples) -> None:
    sent = captured_project_data()
    made = legacy.project_data(json.loads(PROJECT.read_text()))
    assert {k: v for k, v in made.items() if k not in SERIES_BLOCKS} == \
           {k: v for k, v in sent.items() if k not in SERIES_BLOCKS}
    # and the same case as the endpoint parses from the captured request (name and source aside)
    from_project = vp.Case.load(PROJECT).to_dict()
    from_request = legacy.parse_run_request({"projectData": json.dumps(sent)}, {}).to_dict()
    assert from_project.pop("name") == "tutorial-single-port"
    assert from_project.pop("source") == {"web_ui_project": PROJECT.name}
    from_request.pop("name")
    assert from_project == from_request


@pytest.fixture
def jp_server_config(tmp_path):
    return Config({"ServerApp": {"jpserver_extensions": {"vp_jupyter": True}},
                   "VisualPlumesApp": {"store_root": str(tmp_path / "server-store"), "max_workers": 1}})


async def test_project_runs_give_the_rows_of_the_legacy_endpoint(examples, jp_fetch, tmp_path) -> None:
    body, content_type = captured_body()
    response = await jp_fetch("visualplumes", "app", "run_analysis", method="POST", body=body,
                              headers={"Content-Type": content_type}, request_timeout=120)
    endpoint = decode_twice(response.body)
    assert endpoint["success"] is True

    result = vp.run(PROJECT, store=False)
    assert legacy.success_object(result, endpoint["output_id"])["plume"] == endpoint["plume"]
    assert len(endpoint["plume"]["outputs"][0]) == len(result.plume) == 7     # write_step_freq 100, 539 steps

    out = tmp_path / "cli.json"
    done = subprocess.run([sys.executable, "-m", "vp_jupyter.cli", "run", str(PROJECT), "--no-store",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("case 1: ")
    from_cli = Result.from_dict(json.loads(out.read_text()))
    assert legacy.success_object(from_cli, endpoint["output_id"])["plume"] == endpoint["plume"]


def test_a_project_without_its_time_series_files_says_which_to_give_and_how(examples, tmp_path) -> None:
    path = series_project(tmp_path)
    with pytest.raises(vp.CaseError) as err:
        vp.run(path, store=False)
    [problem] = err.value.problems
    assert "effluent_flow (diffuser time series)" in problem
    assert f"vp-jupyter run {path} --file effluent_flow=PATH.csv" in problem
    assert "files={'effluent_flow': 'PATH.csv'}" in problem

    done = subprocess.run([sys.executable, "-m", "vp_jupyter.cli", "run", str(path), "--no-store"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--file effluent_flow=PATH.csv" in done.stderr


def test_a_project_with_its_file_runs_as_the_request_with_that_file_part(examples, tmp_path) -> None:
    path = series_project(tmp_path)
    flow = tmp_path / "flow.csv"
    case = vp.Case.load(path, files={"effluent_flow": flow})
    assert len(case.case_times) == 4 and case.series_rows(3) == [0]     # 3 rows, hourly, cycling
    # the request the UI sends for it: the same projectData with the file part
    data = legacy.project_data(json.loads(path.read_text()), {"diffuser": {"effluent_flow"}})
    request = legacy.parse_run_request({"projectData": json.dumps(data)},
                                       {"effluent_flow-diffuser-file": flow.read_bytes()})
    assert {**case.to_dict(), "name": "", "source": None} == {**request.to_dict(), "name": "", "source": None}

    done = subprocess.run([sys.executable, "-m", "vp_jupyter.cli", "run", str(path), "--no-store",
                           "--file", f"effluent_flow={flow}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["case 1", "case 2", "case 3", "case 4"]
    # the other spellings of the series name, and a name that is none
    for name in ("diffuser.effluent_flow", "effluent_flow-diffuser-file"):
        assert vp.Case.load(path, files={name: flow}) == case
    with pytest.raises(vp.CaseError) as err:
        vp.Case.load(path, files={"effluent_flw": flow})
    assert any("'effluent_flw' is not a time-series name" in p and "current_speed" in p for p in err.value.problems)


def test_project_problems_name_the_field_and_the_path_in_the_project_file(examples, tmp_path) -> None:
    project = json.loads(PROJECT.read_text())
    project["diffuserTable"]["data"][0]["port_diameter"] = "-1"
    project["ambientStore"]["tabs"][0]["data"][1]["ambient_salinity"] = "abc"
    with pytest.raises(vp.CaseError) as err:
        vp.Case.load(project)
    text = "\n".join(err.value.problems)
    assert "(diffuserTable.data[0].port_diameter = '-1')" in text
    assert "ambientStore.tabs[0].data[1].ambient_salinity" in text
    project["diffuserTable"]["data"][0]["id"] = 7
    with pytest.raises(vp.CaseError) as err:
        vp.Case.load(project)
    assert any("diffuserTable.data: no entry with id 0" in p for p in err.value.problems)


def test_convert_writes_the_project_in_the_case_format(examples, tmp_path) -> None:
    out = tmp_path / "tutorial.case.json"
    done = subprocess.run([sys.executable, "-m", "vp_jupyter.cli", "convert", str(PROJECT), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: case 'tutorial-single-port', 1 case" in done.stderr
    written = json.loads(out.read_text())
    assert "diffuserTable" not in written and written["diffuser"]["values"]["diameter"] == 0.05
    assert vp.Case.load(out) == vp.Case.load(PROJECT)


def test_the_form_opens_a_project(examples) -> None:
    pytest.importorskip("ipywidgets")
    form = vp.CaseForm.from_file(PROJECT, store=False)
    assert form.name.value == "tutorial-single-port"
    assert form.field("diffuser.diameter").value == "0.05"
    assert form.problems == []
    with pytest.raises(vp.CaseError):
        vp.CaseForm.from_file(PROJECT, files={"no_such_series": "x.csv"})


def test_an_ambient_series_takes_the_profiles_depth_convention_and_the_columns_unit(examples, tmp_path) -> None:
    project = json.loads(PROJECT.read_text())
    table, tab = project["diffuserTable"], project["ambientStore"]["tabs"][0]
    table["data"][0].update(start_time="0", end_time="2", time_increment="1")
    for key in ("start_time", "end_time", "time_increment"):
        table["store"][key]["value"] = "hr"
    tab["store"]["current_speed"]["mu"] = "cm/s"
    tab["store"]["depth_or_height"]["mu"] = "ft"
    (tmp_path / "speed.csv").write_text("0,150\n10,0\n20,5\n")
    case = vp.Case.load(project, files={"current_speed": tmp_path / "speed.csv"})
    [info] = case.series_info()
    assert (info["where"], info["variable"], info["units"]) == ("ambient", "current_speed", "cm/s")
    assert (info["depth_units"], info["z_is_depth"], info["levels"], info["rows"]) == ("ft", True, [0.0, 150.0], 2)
    assert len(case.case_times) == 3 and [case.series_rows(i) for i in range(3)] == [[0], [1], [0]]
