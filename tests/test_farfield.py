"""Brooks far field (spec §10): the corrected behaviour of the fixed reference bugs (spec §13 items 10 and 12;
reference README "Known deviations") and the rules of §10.3/§10.4 that the project keeps as written.

Every far-field row of every public case is compared with the deviation-applied goldens in
tests/test_golden_fixed.py; the tests here check single rules in a form that shows what they mean.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import REFERENCE, reference_case, require_shared

import vp_jupyter as vp

# golden far-field column -> our SI column
FF_COLUMNS = {"model.run_time": "time", "element.total_surf_dsp": "distance", "model.adj_width": "width",
              "element.dilution": "dilution", "element.concentration": "concentration"}
LENGTHS = {"distance", "width"}


def golden_farfield(name: str) -> tuple[list[dict], list[str]]:
    """The reference port's (golden/) far-field rows of case 1 as {column: SI value}, and its memos."""
    farfield = json.loads(require_shared(REFERENCE / "golden" / f"{name}.json").read_text())["farfield"]
    index = {key: i for i, key in enumerate(farfield["columns"])}
    case = farfield["cases"][0]
    rows = []
    for row in case["rows"]:
        values = {"step": row["step"]}
        for key, ours in FF_COLUMNS.items():
            factor = farfield["headers"][index[key]]["in_units"] or 1.0
            values[ours] = row["values"][index[key]] / factor
        rows.append(values)
    return rows, case["memos"]


def close(ours: float, expected: float, column: str) -> bool:
    return abs(ours - expected) <= max(0.02 * abs(expected), 0.05 if column in LENGTHS else 0.0)


def case_08(**model) -> dict:
    """08 (constant diffusivity, every increment written, background 0.5 ppm, decay 0.5 d⁻¹) with changes."""
    case = json.loads(reference_case("08_brooks_farfield_constant").read_text())
    case["model"].update(model)
    return case


def step_rows(farfield):
    """The rows written at the end of a full step (output_all_ff_increments), not at an output mark."""
    return farfield[farfield["distance"] % 500.0 != 0.0]


def test_background_estimate_keeps_the_plume_between_its_start_and_the_background() -> None:
    """spec §10.3/§10.4: the far field entrains water of the background concentration c_b (dm·c_b per step);
    the estimate's extra dm·c_b·B/2.2 goes only into the rows at the output marks. So on the full-step rows
    the concentration falls from its start towards c_b and never below it. (Adding c_b·(1 + B/2.2) to all
    entrained water made 08 converge on about 12 times the given background.)"""
    result = vp.run(case_08(), store=False)
    farfield = result.farfield
    background = 0.5e-6
    conc = step_rows(farfield)["concentration"].to_numpy()
    assert len(conc) == 8                   # the start, six steps, the final row again
    assert (np.diff(conc[:-1]) < 0.0).all() and (conc > background).all()
    assert conc[-1] < 1.3 * background
    marks = farfield[farfield["distance"] % 500.0 == 0.0].set_index("step")["concentration"]
    ends = step_rows(farfield).drop_duplicates("step").set_index("step")["concentration"]
    assert (marks > ends.reindex(marks.index)).all()     # the estimate's share, at the marks only


def test_output_marks_report_the_previous_step() -> None:
    """spec §10.3: a row at an output distance crossed during a step reports the dilution and width at its
    interpolated time but the pollutant of the step before (decayed over the partial step); without decay
    or background estimate that is the previous full-step row's concentration."""
    farfield = vp.run(case_08(estimate_ff_background=False), store=False).farfield
    rows = farfield.to_dict("records")
    checked = 0
    for before, mark in zip(rows, rows[1:]):
        if mark["distance"] % 500.0 == 0.0 and mark["step"] == before["step"] + 1 > 1:
            k = mark["decay_rate"]
            fraction_time = mark["time"] - before["time"]
            assert mark["concentration"] == pytest.approx(before["concentration"] * math.exp(-k * fraction_time),
                                                          rel=1e-9)
            assert before["time"] < mark["time"] and mark["dilution"] > before["dilution"]
            checked += 1
    assert checked == 5


def test_final_row_is_always_written() -> None:
    """spec §10.3: after the loop the final row is written even when every increment is (08: it appears
    twice, as the golden has it)."""
    farfield = vp.run(case_08(), store=False).farfield
    assert farfield.iloc[-1].equals(farfield.iloc[-2])


def test_farfield_ambient_is_converted_once_and_taken_at_the_surface() -> None:
    """08 gives a background of 0.5 ppm and a decay of 0.5 d⁻¹; the port converted them twice
    (5e-7 ppm, 6.7e-11 s⁻¹). 11 gives a far-field current of 0.5 ft/s towards 90 s-deg (east); the port
    used 0.1524 ft/s and reported 0 s-deg. Dilution, distance and width do not depend on these values."""
    result = vp.run(reference_case("08_brooks_farfield_constant"))
    farfield = result.farfield
    assert farfield["background"].unique().tolist() == pytest.approx([0.5e-6])
    assert farfield["decay_rate"].unique().tolist() == pytest.approx([0.5 / 86400.0])
    expected, _ = golden_farfield("08_brooks_farfield_constant")
    marks = farfield[farfield["distance"] % 500.0 == 0.0]
    golden_marks = [r for r in expected if r["distance"] % 500.0 == 0.0]
    assert len(marks) == len(golden_marks) == 6
    for row, gold in zip(marks.itertuples(), golden_marks):
        for column in ("time", "width", "dilution"):
            assert close(getattr(row, column), gold[column], column)

    farfield = vp.run(reference_case("11_units_english_farfield")).farfield
    assert farfield["ff_velocity"].unique().tolist() == pytest.approx([0.5 / 3.2808])
    assert farfield["ff_dir"].unique().tolist() == pytest.approx([0.0])       # 90 s-deg = east


def test_farfield_plume_moves_with_the_current() -> None:
    """11: the far-field current flows east, so after the near field the plume keeps its y and moves
    east by U·Δt each step (the port moved it radially away from the origin instead)."""
    result = vp.run(reference_case("11_units_english_farfield"))
    farfield = result.farfield
    y_end = result.plume["y"].iloc[-1]
    assert farfield["y"].to_numpy() == pytest.approx(np.full(len(farfield), y_end))
    speed = 0.5 / 3.2808
    dx, dt = np.diff(farfield["x"].to_numpy()), np.diff(farfield["time"].to_numpy())
    assert dx == pytest.approx(speed * dt, rel=1e-9)
    # the source is at the origin here; rows at output marks carry the nominal mark as their distance
    steps = farfield[farfield["distance"] % 300.0 != 0.0]
    assert len(steps) >= 2
    assert steps["distance"].to_numpy() == pytest.approx(np.hypot(steps["x"], steps["y"]).to_numpy(), rel=1e-12)


def test_no_farfield_when_the_farfield_current_is_zero() -> None:
    _, memos = golden_farfield("sejpa_dec2013_maxbrine")
    result = vp.run(reference_case("sejpa_dec2013_maxbrine"))
    assert result.farfield.empty
    assert result.farfield_memos[1] == memos == ["No farfield prediction when far vel = 0."]


def offset_case(decay_per_day: float = 0.0, offset: float = 0.0) -> dict:
    """07's diffuser, as a single port moved `offset` m east, with an optional decay."""
    case = json.loads(reference_case("07_brooks_farfield_4_3").read_text())
    case["diffuser"]["values"].update(num_ports=1, offset_x=offset)
    case["diffuser"]["values"].pop("port_spacing", None)
    for layer in case["ambient"]["layers"]:
        if "decay_rate" in layer:
            layer["decay_rate"] = decay_per_day
    case["ambient"]["units"]["decay_rate"] = "d-1"
    return case


def test_farfield_decay_acts_on_the_whole_travel_time() -> None:
    """With no background, the far field's pollutant mass decays as e^(−kτ) while its dilution does not
    depend on k, so (last/first concentration with decay) / (the same without) = e^(−k(τ_last − τ_first))
    exactly. The port applied decay only over partial steps."""
    k_per_day = 2.0
    plain = vp.run(offset_case()).farfield
    decayed = vp.run(offset_case(k_per_day)).farfield
    assert decayed["dilution"].tolist() == pytest.approx(plain["dilution"].tolist(), rel=1e-12)
    ratio = (decayed["concentration"].iloc[-1] / decayed["concentration"].iloc[0]) / \
        (plain["concentration"].iloc[-1] / plain["concentration"].iloc[0])
    elapsed = decayed["time"].iloc[-1] - decayed["time"].iloc[0]
    assert ratio == pytest.approx(math.exp(-k_per_day / 86400.0 * elapsed), rel=1e-9)


def test_distances_are_measured_from_the_source() -> None:
    """spec §13 item 12: with the source 500 m east of the coordinate origin, near-field and far-field
    distances, the mixing zone and the output marks are measured from the source, so the results are
    those of the source at the origin, shifted by 500 m in x."""
    at_origin = vp.run(offset_case())
    moved = vp.run(offset_case(offset=500.0))
    assert moved.plume["x"].to_numpy() == pytest.approx(at_origin.plume["x"].to_numpy() + 500.0, rel=1e-12)
    assert moved.plume["dilution"].tolist() == pytest.approx(at_origin.plume["dilution"].tolist(), rel=1e-12)
    for column in ("distance", "time", "dilution", "concentration", "width"):
        assert moved.farfield[column].tolist() == pytest.approx(at_origin.farfield[column].tolist(), rel=1e-9)
    assert moved.farfield["distance"].iloc[-1] >= 3000.0


def test_plume_distances_from_the_origin_and_from_the_source() -> None:
    """spec §9.1: `horizontal_distance` is measured from the coordinate origin; `source_distance` from the
    (offset) source, which the mixing zone and the far field use (§13 item 12)."""
    moved = vp.run(offset_case(offset=500.0), store=False).plume
    assert moved["horizontal_distance"].to_numpy() == pytest.approx(np.hypot(moved["x"], moved["y"]).to_numpy())
    assert moved["source_distance"].to_numpy() == pytest.approx(np.hypot(moved["x"] - 500.0, moved["y"]).to_numpy())
    assert moved["horizontal_distance"].iloc[0] == 500.0 and moved["source_distance"].iloc[0] == 0.0
