"""The parts of the reference-port driver (benchmarks/reference_port.py) that need no port: finding the port
folder with a clear error, turning a case into the port's inputs, the child process's error report, and the
comparison with the goldens' summary. The port itself (GPL, github.com/sfei/Visual-Plumes-Models) is not
in this repository and no test needs it; the timing is measured by `python benchmarks/run.py engine
--reference-port PATH`."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_driver():
    spec = importlib.util.spec_from_file_location("reference_port_driver", ROOT / "benchmarks" / "reference_port.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rp = _load_driver()


def test_no_flag_and_no_environment_means_no_port(monkeypatch):
    monkeypatch.delenv(rp.ENV_VAR, raising=False)
    assert rp.port_path(None) is None
    assert rp.port_path("") is None


def test_a_missing_folder_is_named_with_where_to_get_the_port(monkeypatch, tmp_path):
    monkeypatch.delenv(rp.ENV_VAR, raising=False)
    with pytest.raises(rp.ReferencePortError) as err:
        rp.port_path(tmp_path / "nowhere")
    message = str(err.value)
    assert "--reference-port" in message and "nowhere" in message and "no such folder" in message
    assert "github.com/sfei/Visual-Plumes-Models" in message


def test_a_folder_that_is_not_the_port_says_what_is_missing(monkeypatch, tmp_path):
    (tmp_path / "__init__.py").write_text("")
    monkeypatch.setenv(rp.ENV_VAR, str(tmp_path))
    with pytest.raises(rp.ReferencePortError) as err:
        rp.port_path(None)
    message = str(err.value)
    assert rp.ENV_VAR in message and "(Middleware.py, UMUnit.py missing)" in message


def test_a_port_folder_is_found_from_the_environment(monkeypatch, tmp_path):
    for name in ("__init__.py", "Middleware.py", "UMUnit.py"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv(rp.ENV_VAR, str(tmp_path))
    assert rp.port_path(None) == tmp_path.resolve()


def _case(**overrides) -> dict:
    case = {
        "model": {"max_reversals": "SECOND_TRAP_LEVEL", "write_step_freq": 50},
        "diffuser": {"values": {"diameter": 6.0, "depth": 80.0, "num_ports": 1, "temperature": 68.0},
                     "units": {"diameter": "in", "depth": "ft", "horizontal_angle": "s-deg", "temperature": "F",
                               "isopleth": "concentration", "effluent_flow": "MGD"}},
        "ambient": {"units": {"z": "ft", "current_speed": "kts", "decay_rate": "1/d"}, "z_is_depth": False,
                    "extrapolation": {"salinity": {"surface": "EXTRAPOLATED"}},
                    "layers": [{"z": 90, "salinity": 33.0}, {"z": 0, "temperature": 50.0}]},
        "timeseries": {"start_time": 0, "end_time": 3, "time_increment": 60, "units": "min", "end_units": "hr",
                       "diffuser": {"effluent_flow": {"increment_hours": 1, "units": "cfs", "csv": "1\n2\n"}},
                       "ambient": {"current_dir": {"increment_hours": 0.5, "units": "s-deg", "depth_units": "m",
                                                   "csv": "0,10\n90,90\n"}}},
    }
    case.update(overrides)
    return case


def test_case_units_become_the_ports_constants():
    inputs = rp.port_inputs(_case())
    assert inputs["diffuser_units"]["diameter"] == ["Length", "INCHES"]
    assert inputs["diffuser_units"]["horizontal_angle"] == ["Angle", "N_DEGREES"]
    assert inputs["diffuser_units"]["temperature"] == ["Temperature", "FAHRENHEIT"]
    assert inputs["diffuser_units"]["isopleth"] == ["Isopleth", "CONCENTRATION"]
    assert inputs["diffuser_units"]["port_spacing"] == ["Length", "METERS"]          # not given: SI
    assert inputs["ambient_units"]["current_speed"] == ["Speed", "KNOTS"]
    assert inputs["ambient_units"]["decay_rate"] == ["DecayRate", "PER_DAY"]            # an alias
    assert inputs["ambient_units"]["ff_diff_coeff"] == ["EddyDiffusivity", "DIFFUSIVITY"]
    assert inputs["z_is_depth"] is False
    assert inputs["model"] == {"max_reversals": "SECOND_TRAP_LEVEL", "write_step_freq": 50}
    assert inputs["layers"][0] == {"z": 90, "salinity": 33.0}


def test_series_keep_their_own_units_and_times_their_own_time_units():
    series = rp.port_inputs(_case())["timeseries"]
    assert series["units"] == {"start": ["Time", "MINUTES"], "end": ["Time", "HOURS"],
                               "increment": ["Time", "MINUTES"]}
    flow = series["diffuser"]["effluent_flow"]
    assert flow == {"increment_hours": 1, "csv": "1\n2\n", "units": ["FlowRate", "CUBIC_FEET_PER_SECOND"]}
    direction = series["ambient"]["current_dir"]
    assert direction["units"] == ["Angle", "N_DEGREES"] and direction["depth_units"] == ["Length", "METERS"]
    assert direction["z_is_depth"] is True and direction["increment_hours"] == 0.5
    assert rp.port_inputs(_case(timeseries=None))["timeseries"] is None


def test_a_series_read_from_a_file_beside_the_case(tmp_path):
    (tmp_path / "flow.csv").write_text("3\n4\n")
    case = _case()
    del case["timeseries"]["diffuser"]["effluent_flow"]["csv"]
    case["timeseries"]["diffuser"]["effluent_flow"]["file"] = "flow.csv"
    assert rp.port_inputs(case, tmp_path)["timeseries"]["diffuser"]["effluent_flow"]["csv"] == "3\n4\n"


def test_a_unit_the_vocabulary_does_not_know_names_the_field():
    case = _case()
    case["ambient"]["units"]["current_speed"] = "furlongs/fortnight"
    with pytest.raises(rp.ReferencePortError, match=r"ambient\.units\.current_speed: .*furlongs/fortnight"):
        rp.port_inputs(case)


def test_a_model_setting_the_driver_does_not_know_is_refused():
    with pytest.raises(rp.ReferencePortError, match="model: the driver does not know warp_factor"):
        rp.port_inputs(_case(model={"warp_factor": 9}))


def test_a_port_that_cannot_be_imported_is_reported_with_its_error(tmp_path):
    (tmp_path / "__init__.py").write_text("raise ImportError('this port is broken')\n")
    (tmp_path / "Middleware.py").write_text("")
    (tmp_path / "UMUnit.py").write_text("")
    case = tmp_path / "one.json"
    case.write_text('{"diffuser": {"values": {}}, "ambient": {"layers": []}}')
    with pytest.raises(rp.ReferencePortError, match="process failed: ImportError: this port is broken"):
        rp.time_port(rp.port_path(tmp_path), [case], repeats=1, timeout=120)


def _row(step, status, depth=10.0, dilution=50.0):
    return {"step": step, "status": status, "values": [depth, 0.5, 0.1, 0.2, 1.0, -2.0, 1020.0, 3.0, dilution]}


def _summary_case(steps, status, depth=10.0, dilution=50.0):
    return {"steps": steps, "status": status, "depth": depth, "width": 0.5, "x": 1.0, "y": -2.0, "conc": 3.0,
            "dilution": dilution}


def test_golden_agreement_counts_files_on_the_goldens_steps_and_the_largest_difference():
    results = {"a": {"last_rows": [_row(100, "surface"), _row(200, "MZ dis", dilution=50.5)]},
               "b": {"last_rows": [_row(7, "bottom hit")]},
               "c": {"last_rows": [_row(1, "")]}}
    summary = {"a": {"success": True, "cases": [_summary_case(100, "surface"), _summary_case(200, "MZ dis")]},
               "b": {"success": True, "cases": [_summary_case(8, "bottom hit", depth=10.2)]}}
    compared, matching, worst = rp.golden_agreement(results, summary)
    assert (compared, matching) == (2, 1)               # "c" has no golden; "b" ends one step later
    assert worst == pytest.approx(0.2 / 10.2)
