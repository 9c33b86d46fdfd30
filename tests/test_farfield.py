"""Brooks far field (spec §10) against the goldens, and the corrected behaviour of the fixed reference bugs
(spec §13 items 10 and 12; reference README "Known deviations").

Compared with the goldens within 2 % (or 0.05 m for lengths): distance, time, width and dilution of every
row, concentration of the first and last rows. Interpolated-row concentrations, far-field ambient values
in non-SI units and the plume's path are corrected and tested on their own below.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import vp_jupyter as vp

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
pytestmark = pytest.mark.skipif(not (REFERENCE / "golden").is_dir(),
                                reason=f"reference data not found at {REFERENCE} (shared/ is beside the checkout in CI)")

# golden far-field column -> our SI column
FF_COLUMNS = {"model.run_time": "time", "element.total_surf_dsp": "distance", "model.adj_width": "width",
              "element.dilution": "dilution", "element.concentration": "concentration"}
LENGTHS = {"distance", "width"}


def golden_farfield(name: str) -> tuple[list[dict], list[str]]:
    """Golden far-field rows of case 1 as {column: SI value}, and its memos."""
    farfield = json.loads((REFERENCE / "golden" / f"{name}.json").read_text())["farfield"]
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


@pytest.mark.parametrize("name", ["07_brooks_farfield_4_3", "sejpa_aug2003_withmfro_fakeff"])
def test_farfield_rows_match_goldens(name: str) -> None:
    """Distance, time, width and dilution of every row; concentration of the first and last rows
    (the port's interpolated rows carry the previous step's concentration, spec §13 item 10)."""
    expected, memos = golden_farfield(name)
    farfield = vp.run(REFERENCE / "cases" / f"{name}.json").farfield
    assert len(farfield) == len(expected)
    for i, (row, gold) in enumerate(zip(farfield.itertuples(), expected)):
        for column in ("distance", "time", "width", "dilution"):
            assert close(getattr(row, column), gold[column], column), (name, i, column, getattr(row, column), gold[column])
    for i in (0, -1):
        assert close(farfield["concentration"].iloc[i], expected[i]["concentration"], "concentration")


def test_interpolated_rows_carry_their_own_concentration() -> None:
    """sejpa_aug2003: no background, no decay, so the far field only adds clean water and the pollutant
    mass stays constant; concentration × dilution is then nearly constant along the far field (up to the
    ρ/ρ0 factor of the first row, about 2.6 % here). The port's rows at the 200 m marks keep the previous
    step's concentration and break this by up to 40 %."""
    name = "sejpa_aug2003_withmfro_fakeff"
    farfield = vp.run(REFERENCE / "cases" / f"{name}.json").farfield
    product = (farfield["concentration"] * farfield["dilution"]).to_numpy()[1:]
    assert product == pytest.approx(np.full_like(product, product[-1]), rel=0.02)
    golden, _ = golden_farfield(name)
    golden_product = np.array([r["concentration"] * r["dilution"] for r in golden[1:]])
    assert golden_product.max() / golden_product.min() > 1.3       # the port's bug, for contrast


def test_farfield_ambient_is_converted_once_and_taken_at_the_surface() -> None:
    """08 gives a background of 0.5 ppm and a decay of 0.5 d⁻¹; the port converted them twice
    (5e-7 ppm, 6.7e-11 s⁻¹). 11 gives a far-field current of 0.5 ft/s towards 90 s-deg (east); the port
    used 0.1524 ft/s and reported 0 s-deg. Dilution, distance and width do not depend on these values."""
    result = vp.run(REFERENCE / "cases" / "08_brooks_farfield_constant.json")
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

    farfield = vp.run(REFERENCE / "cases" / "11_units_english_farfield.json").farfield
    assert farfield["ff_velocity"].unique().tolist() == pytest.approx([0.5 / 3.2808])
    assert farfield["ff_dir"].unique().tolist() == pytest.approx([0.0])       # 90 s-deg = east


def test_farfield_plume_moves_with_the_current() -> None:
    """11: the far-field current flows east, so after the near field the plume keeps its y and moves
    east by U·Δt each step (the port moved it radially away from the origin instead)."""
    result = vp.run(REFERENCE / "cases" / "11_units_english_farfield.json")
    farfield = result.farfield
    y_end = result.plume["y"].iloc[-1]
    assert farfield["y"].to_numpy() == pytest.approx(np.full(len(farfield), y_end))
    speed = 0.5 / 3.2808
    dx, dt = np.diff(farfield["x"].to_numpy()), np.diff(farfield["time"].to_numpy())
    assert dx == pytest.approx(speed * dt, rel=1e-9)
    source_distance = np.hypot(farfield["x"], farfield["y"])    # the source is at the origin here
    assert farfield["distance"].to_numpy() == pytest.approx(source_distance.to_numpy(), rel=1e-12)


def test_no_farfield_when_the_farfield_current_is_zero() -> None:
    _, memos = golden_farfield("sejpa_dec2013_maxbrine")
    result = vp.run(REFERENCE / "cases" / "sejpa_dec2013_maxbrine.json")
    assert result.farfield.empty
    assert result.farfield_memos[1] == memos == ["No farfield prediction when far vel = 0."]


def offset_case(decay_per_day: float = 0.0, offset: float = 0.0) -> dict:
    """07's diffuser, as a single port moved `offset` m east, with an optional decay."""
    case = json.loads((REFERENCE / "cases" / "07_brooks_farfield_4_3.json").read_text())
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
