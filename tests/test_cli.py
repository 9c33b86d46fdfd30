"""The `vp-jupyter` command line, run as a separate process (`python -m vp_jupyter.cli`)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from builders import env_store, write_case
from conftest import REFERENCE, REPO_ROOT, reference_case, require_shared

LINE = re.compile(r"^case (\d+): (\d+) steps, (.+), dilution ([\d.]+), depth ([\d.]+) (\S+), "
                  r"distance from source ([\d.]+) (\S+)$")
RUN_ID_LINE = re.compile(r"^run id: ([0-9]{8}T[0-9]{6}Z-[0-9a-f]{32})$")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # the child inherits os.environ, so VP_JUPYTER_STORE is the per-test store of conftest's autouse fixture
    return subprocess.run([sys.executable, "-m", "vp_jupyter.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=300)


def case_lines(stderr: str) -> list[str]:
    """The per-case lines of standard error (which also carries the run id line)."""
    return [line for line in stderr.splitlines() if not RUN_ID_LINE.match(line)]


def valid_case() -> dict:
    return {
        "name": "cli test",
        "diffuser": {"values": {"diameter": 0.1, "vertical_angle": 10, "depth": 20, "effluent_flow": 0.02,
                                "temperature": 20, "concentration": 1, "acute_mixing_zone": 100},
                     "units": {}},
        "ambient": {"units": {}, "layers": [
            {"z": 0, "current_speed": 0.1, "current_dir": 0, "salinity": 33, "temperature": 15},
            {"z": 30, "salinity": 33.5, "temperature": 12}]},
    }


def test_bad_value_exits_2_and_names_the_field(tmp_path) -> None:
    case = valid_case()
    case["diffuser"]["values"]["diameter"] = -0.1
    done = cli("run", str(write_case(tmp_path, case)))
    assert done.returncode == 2
    assert "diffuser.values.diameter" in done.stderr or "diameter" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_unknown_unit_exits_2_and_names_the_field(tmp_path) -> None:
    case = valid_case()
    case["ambient"]["units"]["current_speed"] = "furlongs per fortnight"
    done = cli("run", str(write_case(tmp_path, case)))
    assert done.returncode == 2
    assert "current_speed" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_malformed_file_exits_2_without_traceback(tmp_path, content) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    done = cli("run", str(path))
    assert done.returncode == 2 and done.stderr and "Traceback" not in done.stderr


def test_missing_file_exits_2(tmp_path) -> None:
    done = cli("run", str(tmp_path / "nowhere.json"))
    assert done.returncode == 2
    assert "nowhere.json" in done.stderr and "Traceback" not in done.stderr


def test_json_and_report_cannot_both_take_stdout(tmp_path) -> None:
    done = cli("run", str(write_case(tmp_path, valid_case())), "--json", "--report")
    assert done.returncode == 2 and "standard output" in done.stderr


def test_example_runs_and_prints_one_line() -> None:
    done = cli("run", "--example")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), lines


def test_run_prints_one_line_per_case_and_writes_json(tmp_path) -> None:
    case = valid_case()
    case["timeseries"] = {"start_time": 0, "end_time": 2, "time_increment": 1, "units": "hr",
                          "diffuser": {"effluent_flow": {"increment_hours": 1, "csv": "0.02\n0.03\n0.01\n"}}}
    out = tmp_path / "result.json"
    done = cli("run", str(write_case(tmp_path, case)), "--json", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [LINE.match(line).group(1) for line in lines] == ["1", "2", "3"]
    data = json.loads(out.read_text())
    assert data["cases"] == 3
    for line, summary, plume in zip(lines, data["summary"], data["plume"]):
        match = LINE.match(line)
        assert int(match.group(2)) == summary["steps"] == plume["steps"][-1]
        assert float(match.group(4)) == pytest.approx(summary["dilution"], abs=0.006)
        assert summary["dilution"] == plume["columns"]["dilution"][-1]
        assert (match.group(6), match.group(8)) == ("m", "m")


def test_json_to_stdout_is_the_only_stdout_document(tmp_path) -> None:
    done = cli("run", str(write_case(tmp_path, valid_case())), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # the case lines went to stderr
    (line,) = case_lines(done.stderr)
    assert data["cases"] == 1 and LINE.match(line)


def test_report_option_prints_the_text_report(tmp_path) -> None:
    done = cli("run", str(write_case(tmp_path, valid_case())), "--report")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "Model Parameters" and "Case 1 (+0.00 hrs):" in lines
    assert any(line.startswith(" Step     Depth") for line in lines)


def test_cli_start_up_does_not_import_pandas() -> None:
    code = ("import sys; from vp_jupyter.cli import main; code = main(['run', '--example']); "
            "assert 'pandas' not in sys.modules, 'pandas imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr


def test_package_import_is_lazy() -> None:
    code = ("import sys, vp_jupyter as vp; "
            "assert not {'pandas', 'vp_jupyter.inputs', 'vp_jupyter.results'} & set(sys.modules), 'eager import'; "
            "assert vp.Case.__name__ == 'Case' and 'vp_jupyter.inputs' in sys.modules; "
            "assert vp.Result.__name__ == 'Result' and vp.__version__; "
            "missing = getattr(vp, 'no_such_name', None); assert missing is None")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr


def test_reference_single_port_case_matches_its_golden_summary() -> None:
    path = reference_case("01_readme_single_port")
    golden = json.loads(require_shared(REFERENCE / "golden" / "SUMMARY.json").read_text())
    done = cli("run", str(path), "--json", "-")
    assert done.returncode == 0, done.stderr
    (line,) = case_lines(done.stderr)
    match = LINE.match(line)
    assert match, line
    expected = golden["01_readme_single_port"]["cases"][0]  # last plume row, in the golden's case units
    data = json.loads(done.stdout)
    final = data["summary"][0]
    assert int(match.group(2)) == expected["steps"]
    assert final["dilution"] == pytest.approx(expected["dilution"], rel=0.02)
    # the case gives depths in ft and the current in ft/s: the line is in feet (golden depth is in ft too)
    assert (match.group(6), match.group(8)) == ("ft", "ft")
    assert float(match.group(5)) == pytest.approx(expected["depth"], abs=0.05 * 3.2808)
    distance = float(match.group(7))
    assert distance == pytest.approx(abs(expected["y"]), rel=0.02)
    assert match.group(3) == expected["status"]


def test_a_run_is_recorded_with_source_cli_and_its_id_on_stderr(tmp_path) -> None:
    done = cli("run", str(write_case(tmp_path, valid_case())))
    assert done.returncode == 0, done.stderr
    (id_line,) = done.stderr.splitlines()
    run_id = RUN_ID_LINE.match(id_line).group(1)
    (record,) = env_store().list()
    assert (record.id, record.source, record.status, record.case_name) == (run_id, "cli", "succeeded", "cli test")
    stored = env_store().load_result(run_id)
    (line,) = done.stdout.splitlines()
    assert LINE.match(line).group(4) == f"{stored.summary().dilution[0]:.2f}"


def test_no_store_records_nothing_and_prints_no_id(tmp_path) -> None:
    done = cli("run", str(write_case(tmp_path, valid_case())), "--no-store")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and len(done.stdout.splitlines()) == 1
    assert env_store().list() == []


def test_an_unwritable_store_warns_but_the_run_succeeds(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("")
    monkeypatch.setenv("VP_JUPYTER_STORE", str(blocker))
    done = cli("run", str(write_case(tmp_path, valid_case())))
    assert done.returncode == 0, done.stderr
    assert "warning: the run was not recorded in the archive store" in done.stderr
    assert not any(RUN_ID_LINE.match(line) for line in done.stderr.splitlines())
    assert "Traceback" not in done.stderr
    assert LINE.match(done.stdout.strip())


def test_invalid_input_records_nothing(tmp_path) -> None:
    case = valid_case()
    case["diffuser"]["values"]["diameter"] = -0.1
    assert cli("run", str(write_case(tmp_path, case))).returncode == 2
    assert env_store().list() == []
