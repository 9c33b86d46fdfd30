"""The notebook form (`vp_jupyter.widgets.CaseForm`), driven programmatically without a browser: widgets
generated from the field tables, inline validation, Load/Save, Run with the stored run and the shown output,
reopening stored runs."""
from __future__ import annotations

import base64
import datetime
import html
import json
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")
import ipywidgets as widgets  # noqa: E402

import vp_jupyter as vp  # noqa: E402
from vp_jupyter import legacy, units as u  # noqa: E402
from vp_jupyter.inputs.fields import (AMBIENT_FIELDS, AMBIENT_SERIES, DIFFUSER_FIELDS, DIFFUSER_SERIES,  # noqa: E402
                                      EXTRAPOLATION_MODES, MODEL_FIELDS, OUTPUT_FIELDS, SERIES_FIELDS,
                                      TIMESERIES_FIELDS, FieldSpec)
from vp_jupyter.store import RunStore  # noqa: E402
from vp_jupyter.widgets import CaseForm, model_group  # noqa: E402
from vp_jupyter.widgets.fields import NumberText, is_marked, parse_number  # noqa: E402

from conftest import REFERENCE, require_shared  # noqa: E402

EXAMPLE = Path(vp.__file__).parent / "examples" / "stratified_outfall.json"
RUN_TIMEOUT = 120


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture
def form(store) -> CaseForm:
    return CaseForm(EXAMPLE, store=store)


def upload_value(name: str, data: bytes) -> tuple:
    """The value a FileUpload widget holds after the user picked one file."""
    return ({"name": name, "type": "application/octet-stream", "size": len(data), "content": memoryview(data),
             "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


def text(widget: widgets.HTML) -> str:
    """The text of an HTML message widget (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", widget.value))


def link_bytes(html_text: str) -> tuple[str, bytes]:
    """(download file name, decoded data) of the first data: URI link in `html_text`."""
    match = re.search(r'<a download="([^"]+)" href="data:[^;]+;base64,([A-Za-z0-9+/=]+)"', html_text)
    assert match, html_text[:300]
    return match.group(1), base64.b64decode(match.group(2))


# ------------------------------------------------------------------------------- generated from the tables

def test_every_field_of_the_tables_has_a_widget():
    form = CaseForm(store=False)
    for name, spec in MODEL_FIELDS.items():
        widget = form.field(f"model.{name}")
        expected = {"bool": widgets.Checkbox, "enum": widgets.Dropdown}.get(spec.type, NumberText)
        assert isinstance(widget, expected), name
        if spec.type == "enum":
            assert list(widget.options) == list(spec.choices)
        if spec.description:
            assert spec.description in widget.tooltip
    for name, spec in DIFFUSER_FIELDS.items():
        widget = form.field(f"diffuser.{name}")
        assert isinstance(widget, NumberText), name
        assert form.field(f"diffuser.values.{name}") is widget
        if spec.kind == "unitless":
            with pytest.raises(KeyError):
                form.unit(f"diffuser.{name}")
        else:
            assert [v for _, v in form.unit(f"diffuser.{name}").options] == list(spec.allowed_units)
            assert form.unit(f"diffuser.{name}").value == spec.default_unit
    for name in OUTPUT_FIELDS:
        assert isinstance(form.field(f"output.{name}"), widgets.Checkbox)
    for name, spec in AMBIENT_FIELDS.items():
        assert isinstance(form.field(f"ambient.layers[0].{name}"), NumberText)
        assert [v for _, v in form.unit(f"ambient.{name}").options] == u.unit_labels(spec.kind)
    for name in AMBIENT_FIELDS:
        if name != "z":
            for end in ("surface", "bottom"):
                dropdown = form.field(f"ambient.extrapolation.{name}.{end}")
                assert [v for _, v in dropdown.options] == list(EXTRAPOLATION_MODES)
    for name in TIMESERIES_FIELDS:
        assert isinstance(form.field(f"timeseries.{name}"), NumberText)
        assert form.unit(f"timeseries.{name}").value == "s"
    for group, names in (("diffuser", DIFFUSER_SERIES), ("ambient", AMBIENT_SERIES)):
        for var in names:
            for name in SERIES_FIELDS:
                if name == "z_is_depth" and group == "diffuser":
                    continue
                assert form.field(f"timeseries.{group}.{var}.{name}") is not None
            assert isinstance(form.field(f"timeseries.{group}.{var}.upload"), widgets.FileUpload)


def test_blank_form_shows_the_defaults_of_the_tables():
    form = CaseForm(store=False)
    case = form.case_dict()
    assert case["model"] == {n: s.default for n, s in MODEL_FIELDS.items()}
    assert case["output"] == {n: s.default for n, s in OUTPUT_FIELDS.items()}
    assert case["diffuser"]["values"] == {n: s.default for n, s in DIFFUSER_FIELDS.items() if s.default is not None}
    assert form.field("diffuser.diameter").placeholder == "required"
    assert len(form.ambient.layers) == 2 and case["ambient"]["layers"] == [{}, {}]
    assert "timeseries" not in case
    assert form.status.value == "" and form.message("diffuser.diameter").value == ""  # no messages before a change


def test_a_new_field_added_to_a_table_appears_in_the_form(monkeypatch):
    new_diffuser = FieldSpec(name="nozzle_length", section="diffuser", label="Nozzle length", kind="length",
                             default=0.5, minimum=0.0, description="A field added for this test.")
    new_model = FieldSpec(name="extra_flag", section="model", label="Extra flag", type="bool", default=True)
    monkeypatch.setitem(DIFFUSER_FIELDS, "nozzle_length", new_diffuser)
    monkeypatch.setitem(MODEL_FIELDS, "extra_flag", new_model)
    form = CaseForm(store=False)
    assert form.field("diffuser.nozzle_length").value == "0.5"
    assert "A field added for this test." in form.field("diffuser.nozzle_length").tooltip
    assert [v for _, v in form.unit("diffuser.nozzle_length").options] == u.unit_labels("length")
    assert form.field("model.extra_flag").value is True
    case = form.case_dict()
    assert case["diffuser"]["values"]["nozzle_length"] == 0.5 and case["diffuser"]["units"]["nozzle_length"] == "m"
    assert case["model"]["extra_flag"] is True


def test_model_settings_are_grouped_and_every_field_is_in_a_group():
    assert model_group("max_reversals") == model_group("stop_on_bottom_hit") == "Stop conditions"
    assert model_group("brooks_far_field") == model_group("ff_increment") == "Far field"
    assert model_group("farfield_diffusivity") == model_group("estimate_ff_background") == "Far field"
    assert model_group("tpb_coast_bin") == model_group("tidal_pollution_buildup") == "Tidal buildup"
    assert model_group("aspiration_coeff") == model_group("a_field_nobody_grouped") == "General"
    form = CaseForm(store=False)
    inputs = [cell for group in form.model_groups.children for cell in group.children[::3]]   # input, unit, message
    assert len(inputs) == len(MODEL_FIELDS) + len(OUTPUT_FIELDS)
    assert {cell.description.rstrip(" *") for cell in inputs} == \
           {spec.label for spec in (*MODEL_FIELDS.values(), *OUTPUT_FIELDS.values())}
    assert list(form.model_groups.titles) == ["General", "Stop conditions", "Far field", "Tidal buildup", "Output"]


def test_number_boxes_take_numbers_blanks_and_text():
    box = NumberText()
    box.value = 0.3
    assert box.value == "0.3" and box.number == 0.3
    box.value = 30.0
    assert box.value == "30" and box.number == 30
    box.value = None
    assert box.value == "" and box.number is None
    assert parse_number(" 1e-3 ") == 0.001 and parse_number("abc") == "abc" and parse_number("nan") == "nan"


# ------------------------------------------------------------------------------------------ validation

def test_invalid_input_shows_the_message_next_to_the_field_and_starts_no_run(form, store):
    assert form.problems == [] and form.status.value == ""
    form.field("diffuser.diameter").value = -1
    assert "must be > 0 (got -1)" in text(form.message("diffuser.diameter"))
    assert form.message("diffuser.diameter") is form.diffuser_fields["diameter"].message
    assert is_marked(form.field("diffuser.diameter"))
    assert not is_marked(form.field("diffuser.depth"))
    form.field("ambient.layers[2].z").value = 5                       # 0, 12, 5, 40: not increasing
    row_message = form.message("ambient.layers[2].z")
    assert row_message is form.ambient.layers[2].message
    assert "z: depths must increase (got 5 after 12)" in text(row_message)
    assert form.tabs.get_title(0) == "Diffuser (1 ⚠)" and form.tabs.get_title(1) == "Ambient (1 ⚠)"
    assert "2 problems" in form.status.value

    form.run_button.click()
    assert not form.running and form.result is None
    assert store.list() == []
    assert "Not run" in text(form.status) and "2 problems" in text(form.status)

    form.field("diffuser.diameter").value = 0.2                       # fixed: the message goes away
    assert form.message("diffuser.diameter").value == ""
    assert not is_marked(form.field("diffuser.diameter"))
    assert "depths must increase" in text(form.message("ambient.layers[2].z"))
    form.field("ambient.layers[2].z").value = 25
    assert form.problems == [] and form.status.value == "" and form.tabs.get_title(1) == "Ambient"
    assert form.message("ambient.layers[2].z").value == ""


def test_messages_for_units_cells_and_loaded_values(store):
    data = json.loads(EXAMPLE.read_text())
    data["model"]["bacteria_model"] = "NOT_A_MODEL"
    data["diffuser"]["units"]["depth"] = "furlong"
    data["ambient"]["layers"][1]["temperature"] = "abc"
    form = CaseForm(data, store=store)
    assert "must be one of" in form.message("model.bacteria_model").value
    assert form.field("model.bacteria_model").value == "NOT_A_MODEL"          # shown as given
    assert "unknown unit 'furlong'" in text(form.message("diffuser.units.depth"))
    assert form.message("diffuser.units.depth") is form.message("diffuser.depth")
    cell_message = text(form.message("ambient.layers[1].temperature"))
    assert "temperature: must be a number (got 'abc')" in cell_message
    assert is_marked(form.field("ambient.layers[1].temperature"))
    assert not is_marked(form.field("ambient.layers[1].salinity"))
    assert form.tabs.get_title(2) == "Model settings (1 ⚠)"

    form.unit("diffuser.depth").value = "ft"
    form.field("model.bacteria_model").value = "COLIFORM_MANCINI"
    form.field("ambient.layers[1].temperature").value = 14
    assert form.problems == []
    assert form.message("model.bacteria_model").value == "" and form.message("diffuser.depth").value == ""
    assert CaseForm(form.to_json(), store=False).field("model.bacteria_model").options == MODEL_FIELDS[
        "bacteria_model"].choices                                      # the stray entry is not carried over


def test_whole_profile_problems_go_under_the_table_and_stray_ones_to_the_status_line(form):
    form.ambient.remove_layer(3)
    form.ambient.remove_layer(2)
    form.ambient.remove_layer(1)
    assert "layers: at least 2 layers are needed" in text(form.ambient.message)
    form.show_problems(["something odd: happened", "diffuser.diameter: must be > 0 (got -1)"])
    assert "2 problems" in text(form.status) and "something odd: happened" in text(form.status)
    assert "diameter" not in text(form.status)
    assert "must be > 0" in text(form.message("diffuser.diameter"))
    assert form.ambient.message.value == ""                             # cleared: not in this problem list


# ----------------------------------------------------------------------------------------------- run

def test_run_stores_the_values_set_and_shows_summary_and_archive_link(form, store):
    form.field("diffuser.diameter").value = 0.3
    form.unit("diffuser.depth").value = "ft"
    form.field("diffuser.depth").value = 98.4
    form.add_layer(z=60, salinity=33.4, temperature=9.8)
    form.field("ambient.extrapolation.salinity.surface").value = "EXTRAPOLATED"
    form.ambient.add_button.click()                                    # a blank layer, then removed again
    assert len(form.ambient.layers) == 6
    form.ambient.layers[5].remove.click()
    assert form.problems == []

    seen = []
    form.progress.observe(lambda change: seen.append(change["new"]), names="value")
    form.run_button.click()
    result = form.wait(RUN_TIMEOUT)
    assert result is not None, form.status.value
    assert form.run_button.disabled is False and form.progress.bar_style == "success"
    assert form.progress.value == form.progress.max == 1 and 1 in seen

    records = store.list()
    assert [r.id for r in records] == [form.run_id] and records[0].source == "notebook"
    stored = store.load_case(form.run_id)
    assert stored.diffuser.diameter == 0.3 and stored.diffuser.depth == 98.4
    assert stored.diffuser.units["depth"] == "ft"
    assert [layer.z for layer in stored.ambient.layers] == [0, 12, 25, 40, 60]
    assert stored.ambient.layers[4].salinity == 33.4
    assert stored.ambient.extrapolation["salinity"]["surface"] == "EXTRAPOLATED"

    final_dilution = result.summary()["dilution"].iloc[-1]
    assert store.load_result(form.run_id).summary()["dilution"].iloc[-1] == pytest.approx(final_dilution)
    assert f"<td>{final_dilution:.4g}</td>" in form.summary.value
    assert form.run_id in form.summary.value and "dilution" in form.summary.value
    name, archive = link_bytes(form.archive_link.value)           # built from the stored result
    assert name == f"output_{form.run_id}.zip"
    assert archive == legacy.archive_bytes(store.load_result(form.run_id), form.run_id) and archive[:2] == b"PK"
    if hasattr(vp.Result, "plot"):
        assert form.plot.value[:8] == b"\x89PNG\r\n\x1a\n" and form.plot.layout.display == ""


def test_time_series_upload_runs_every_case_with_progress(form, store):
    form.field("timeseries.enabled").value = True
    form.field("timeseries.end_time").value = 2
    form.field("timeseries.time_increment").value = 1
    for name in TIMESERIES_FIELDS:
        form.unit(f"timeseries.{name}").value = "hr"
    upload = form.field("timeseries.diffuser.effluent_flow.upload")
    upload.value = upload_value("flow.csv", b"0.10\n0.15\nabc\n")
    csv = form.field("timeseries.diffuser.effluent_flow.csv")
    assert csv.value == "0.10\n0.15\nabc\n" and upload.value == ()
    row_message = text(form.message("timeseries.diffuser.effluent_flow"))
    assert "increment_hours: is required" in row_message
    assert "csv line 3: must be a number (got 'abc') in column 1" in row_message
    assert form.tabs.get_title(3) == "Time series (2 ⚠)"
    form.field("timeseries.diffuser.effluent_flow.increment_hours").value = 1
    csv.value = "0.10\n0.15\n0.20\n"
    form.unit("timeseries.diffuser.effluent_flow").value = "m3/s"
    assert form.problems == []

    seen = []
    form.progress.observe(lambda change: seen.append(change["new"]), names="value")
    result = form.run(RUN_TIMEOUT)
    assert result is not None and result.case_count == 3
    assert seen[-1] == 3 and set(seen) >= {1, 2, 3} and form.progress.max == 3
    assert form.progress_label.value == "3 / 3 cases"
    stored = store.load_case(form.run_id)
    assert stored.case_times == [0.0, 3600.0, 7200.0]
    assert stored.series_info()[0]["variable"] == "effluent_flow" and stored.series_info()[0]["rows"] == 3
    for dilution in result.summary()["dilution"]:
        assert f"<td>{dilution:.4g}</td>" in form.summary.value


def test_a_failed_run_is_reported_and_the_button_comes_back(form, store, monkeypatch):
    def refuse(case, **options):
        time.sleep(0.05)
        raise vp.CaseError(["case 1: the model refused this case"])

    monkeypatch.setattr(vp, "run", refuse)
    form.run_button.click()
    assert form.run_button.disabled or form.result is None
    assert form.wait(RUN_TIMEOUT) is None
    assert "The run failed" in form.status.value and "the model refused this case" in form.status.value
    assert form.progress.bar_style == "danger" and form.run_button.disabled is False
    assert store.list() == [] and form.summary.value == "" and form.archive_link.value == ""


def test_store_false_runs_in_memory_without_an_archive_link():
    form = CaseForm(EXAMPLE, store=False)
    result = form.run(RUN_TIMEOUT)
    assert result is not None and form.run_id is None
    assert "Run (not stored)" in form.summary.value and form.archive_link.value == ""


# ------------------------------------------------------------------------------------------ load/save

def test_save_and_load_round_trip(form, tmp_path):
    form.field("diffuser.diameter").value = 0.25
    form.unit("ambient.temperature").value = "°F"
    for layer in form.ambient.layers:
        value = layer.cells["temperature"].number
        if value is not None:
            layer.cells["temperature"].value = value * 9 / 5 + 32
    form.field("model.max_dilution").value = 500
    assert form.problems == []

    saved = form.save(tmp_path / "saved.json")
    assert json.loads((tmp_path / "saved.json").read_text()) == form.case_dict() == json.loads(saved)
    name, data = link_bytes(form.save_link.value)
    assert name == "stratified_outfall.json" and json.loads(data) == form.case_dict()

    other = CaseForm(store=False)
    other.load_upload.value = upload_value("saved.json", data)
    assert other.load_upload.value == () and "Loaded saved.json" in other.status.value
    assert other.case_dict() == form.case_dict()
    assert other.field("diffuser.diameter").value == "0.25" and other.unit("ambient.temperature").value == "°F"
    assert CaseForm(tmp_path / "saved.json", store=False).case_dict() == form.case_dict()
    assert CaseForm(form.to_json(), store=False).case_dict() == form.case_dict()

    for name, content in (("broken.json", b"{not json"), ("list.json", b"[1, 2]"), ("latin1.json", b"\xff\xfe{")):
        other.load_upload.value = upload_value(name, content)
        assert f"{name}: not a case JSON file" in text(other.status)
    assert other.case_dict() == form.case_dict()                       # unchanged


def test_unknown_keys_of_a_loaded_case_are_named():
    data = json.loads(EXAMPLE.read_text())
    data["diffuser"]["values"]["colour"] = "blue"
    data["ambient"]["layers"][0]["oxygen"] = 8
    form = CaseForm(data, store=False)
    assert "diffuser.values.colour" in form.status.value and "ambient.layers[0].oxygen" in form.status.value
    assert "colour" not in form.case_dict()["diffuser"]["values"]


def test_every_reference_case_round_trips_through_the_form():
    cases = sorted((require_shared(REFERENCE / "cases")).glob("*.json"))
    assert cases
    for path in cases:
        form = CaseForm(path, store=False)
        assert form.problems == [], path.name
        again, original = vp.Case.load(form.case_dict()), vp.Case.load(path)
        assert again.case_times == original.case_times, path.name
        assert again.engine_cases() == original.engine_cases(), path.name


# ------------------------------------------------------------------------------------------- from_run

def test_from_run_reopens_a_run_of_the_web_ui(store):
    from vp_jupyter.legacy import archive_bytes
    from vp_jupyter.store import new_run_id

    data = json.loads(EXAMPLE.read_text())
    data["diffuser"]["units"]["depth"] = "ft"
    data["diffuser"]["values"]["depth"] = 95
    case = vp.Case.load(data)
    result = vp.run(case, store=False)
    run_id = new_run_id()
    record = store.save(case, result, source="ui", owner="someone", status="succeeded", started=time.time(),
                        finished=time.time(), run_id=run_id, request={"client": "legacy"},
                        archive_bytes=archive_bytes(result, run_id))

    form = CaseForm.from_run(record.id, store=store)
    assert form.store is store
    assert form.field("diffuser.depth").value == "95" and form.unit("diffuser.depth").value == "ft"
    assert vp.Case.load(form.case_dict()).engine_cases() == case.engine_cases()
    assert "Reopened run" in form.status.value and "ui" in form.status.value and form.problems == []
    final_dilution = result.summary()["dilution"].iloc[-1]
    assert f"<td>{final_dilution:.4g}</td>" in form.summary.value
    assert link_bytes(form.archive_link.value)[1] == store.archive_path(record.id).read_bytes()

    rerun = form.run(RUN_TIMEOUT)                                       # a new run in the same store
    assert rerun is not None and len(store.list()) == 2 and form.run_id != record.id


def test_from_run_of_a_failed_run_shows_its_case_and_error(store):
    case = vp.Case.load(EXAMPLE)
    record = store.save(case, source="ui", status="failed", error="worker died")
    form = CaseForm.from_run(record.id, store=store)
    assert "failed" in form.status.value and "worker died" in form.status.value
    assert form.summary.value == "" and form.field("diffuser.diameter").value == "0.2"


def test_case_form_is_a_public_name():
    assert vp.CaseForm is CaseForm
    assert "CaseForm" in vp.__all__


def test_run_reports_progress_after_every_case():
    data = json.loads(EXAMPLE.read_text())
    data["timeseries"] = {"start_time": 0, "end_time": 2, "time_increment": 1, "units": "hr",
                          "diffuser": {"effluent_flow": {"csv": "0.1\n0.12\n0.14\n", "increment_hours": 1}}}
    calls = []
    result = vp.run(data, store=False, progress=lambda done, total: calls.append((done, total)))
    assert result.case_count == 3 and calls == [(1, 3), (2, 3), (3, 3)]


def test_a_profile_of_100_layers_is_shown_edited_and_checked():
    layers = [{"z": i, "current_speed": 0.1, "current_dir": 90, "salinity": 33 + i / 100, "temperature": 15 - i / 20}
              for i in range(100)]
    case = {"name": "deep", "ambient": {"layers": layers},
            "diffuser": {"values": {"diameter": 0.2, "depth": 99, "effluent_flow": 0.1, "concentration": 100,
                                    "temperature": 20, "salinity": 0}}}
    form = CaseForm(case, store=False)
    assert form.problems == [] and len(form.ambient.layers) == 100
    shown = set(map(id, form.ambient.grid.children))
    assert all(id(cell) in shown for layer in form.ambient.layers for cell in layer.cells.values())
    assert form.case_dict()["ambient"]["layers"] == [{k: (int(v) if float(v).is_integer() else v) for k, v in l.items()}
                                                     for l in layers]
    form.field("ambient.layers[98].temperature").value = -40
    assert any(p.startswith("ambient.layers[98].temperature") for p in form.problems)
    assert "temperature" in form.message("ambient.layers[98].temperature").value
