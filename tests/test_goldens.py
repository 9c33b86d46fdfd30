"""Near-field results against the reference goldens (../shared/reference/golden), spec §14 and §13.

Every written row of every case is matched by step number: depth, width, x, y within 2 % or 0.05 m,
dilution within 2 %, and the same status text. Where a project decision of spec §13 moves an event one
step earlier than the reference port (the isopleth factor evaluated at the current step; bottom and
surface contact from the current diameter — both as the original Visual Plumes program does), the
golden row of that event may match our row one step earlier, and nothing else may differ. Goldens
whose numbers a fixed reference bug changes get tests of the corrected behaviour instead.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import vp_jupyter as vp

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
pytestmark = pytest.mark.skipif(not (REFERENCE / "golden").is_dir(),
                                reason=f"reference data not found at {REFERENCE} (shared/ is beside the checkout in CI)")

# golden column key -> (our SI column, is a length)
COMPARED = {
    "element.depth": ("depth", True),
    "element.diameter": ("diameter", True),
    "element.x_displacement": ("x", True),
    "element.y_displacement": ("y", True),
    "element.dilution": ("dilution", False),
}

ISOPLETH = frozenset({"isopleth closed"})
BOUNDARY = frozenset({"bottom hit", "surface"})
# golden -> events that may come one step earlier than in the reference port (spec §13 decisions)
GOLDENS = {
    "01_readme_single_port": frozenset(),
    "02_readme_tpb": frozenset(),
    "04_buoyant_vertical_surfacing": frozenset(),
    "05_dense_brine_bottom": frozenset(),
    "07_brooks_farfield_4_3": BOUNDARY,
    "08_brooks_farfield_constant": BOUNDARY,
    "09_bacteria_decay_isopleth": ISOPLETH,
    "10_timeseries_tpb_hourly": ISOPLETH,
    "11_units_english_farfield": BOUNDARY,
    "12_units_height_extrapolation": frozenset(),
    "example_timeseries": frozenset(),
    "sejpa_aug2003_withmfro_fakeff": frozenset(),
    "sejpa_dec2013_maxbrine": frozenset(),
    "trwtp": ISOPLETH | frozenset({"bottom hit"}),
    "tutorial_single_port": frozenset(),
}
# reference README: the only golden case whose initial-angle branch (spec §6.3, §13 item 1) was decided
# by rounding noise; the project takes the intended branch, which moves that case by about 1 %
BRANCH_CASES = {("10_timeseries_tpb_hourly", 6)}

_RESULTS: dict[str, "vp.Result"] = {}


def run_reference(name: str):
    if name not in _RESULTS:
        _RESULTS[name] = vp.run(REFERENCE / "cases" / f"{name}.json")
    return _RESULTS[name]


def load_golden(name: str) -> dict:
    return json.loads((REFERENCE / "golden" / f"{name}.json").read_text())


def golden_rows_si(golden: dict, case_index: int = 0) -> dict[int, dict]:
    """{step: {"status": str, our_column: SI value}} from a golden's plume table."""
    plume = golden["plume"]
    index = {key: i for i, key in enumerate(plume["columns"])}
    factors = {key: plume["headers"][index[key]]["in_units"] for key in COMPARED}
    rows = {}
    for row in plume["cases"][case_index]["rows"]:
        values = {"status": row["status"]}
        for key, (ours, _) in COMPARED.items():
            factor = factors[key] or 1.0
            values[ours] = row["values"][index[key]] / factor       # factor units: SI = v / factor
        rows[row["step"]] = values
    return rows


def status_parts(text: str) -> set[str]:
    return {part.strip() for part in text.split(",") if part.strip()}


def assert_close(ours: float, expected: float, is_length: bool, where: str) -> None:
    tolerance = max(0.02 * abs(expected), 0.05 if is_length else 0.0)
    assert abs(ours - expected) <= tolerance, f"{where}: got {ours:.6g}, golden {expected:.6g}"


def compare_case(plume, golden_rows: dict[int, dict], where: str, may_shift=frozenset()) -> None:
    """Match every golden row to one of ours (same step, or one step earlier for a `may_shift` event)
    and compare values; every row of ours must be matched."""
    ours = {int(r.step): r for r in plume.itertuples()}
    matched = set()
    for step, gold in golden_rows.items():
        expected = status_parts(gold["status"])
        candidates = [step, step - 1] if expected & may_shift else [step]
        row = None
        for candidate in candidates:
            mine = ours.get(candidate)
            if mine is None:
                continue
            got = status_parts(mine.status)
            # at the same step our row may carry an event that moved in from the next step
            if expected <= got and (candidate != step or got - expected <= may_shift):
                row = mine
                break
        assert row is not None, (f"{where}: golden step {step} {gold['status']!r} has no matching row; "
                                 f"ours near it: {[(s, ours[s].status) for s in (step - 1, step) if s in ours]}")
        matched.add(int(row.step))
        if int(row.step) != step:
            continue   # an earlier step's state: the original-program comparison (test_plumes20) checks it
        for column, is_length in COMPARED.values():
            assert_close(getattr(row, column), gold[column], is_length, f"{where} step {step} {column}")
    assert matched == set(ours), f"{where}: rows the port did not write: {sorted(set(ours) - matched)}"


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden_plume_rows(name: str) -> None:
    golden = load_golden(name)
    plume = run_reference(name).plume
    assert plume["case"].nunique() == golden["cases"]
    for index in range(golden["cases"]):
        number = index + 1
        rows = golden_rows_si(golden, index)
        mine = plume[plume["case"] == number]
        if (name, number) in BRANCH_CASES:
            final = rows[max(rows)]
            assert mine["status"].iloc[-1] == final["status"]
            for column, is_length in COMPARED.values():
                assert_close(mine[column].iloc[-1], final[column], is_length, f"{name} case {number} final")
            continue
        compare_case(mine, rows, f"{name} case {number}", GOLDENS[name])


def test_shifted_events_are_exactly_the_documented_ones() -> None:
    """The isopleth closes one step early in the 57 TRwtp cases the reference README lists, and bottom
    contact comes one step early in exactly the 13 cases where the original program saw it earlier
    (reference/plumes20/COMPARISON.md)."""
    golden = load_golden("trwtp")
    plume = run_reference("trwtp").plume
    early_bottom, early_close = [], []
    for index in range(golden["cases"]):
        rows = golden_rows_si(golden, index)
        mine = plume[plume["case"] == index + 1]
        for event, bucket in (("bottom hit", early_bottom), ("isopleth closed", early_close)):
            golden_steps = [s for s, r in rows.items() if event in r["status"]]
            our_steps = mine.loc[mine["status"].str.contains(event), "step"].tolist()
            if golden_steps and our_steps and our_steps[0] == golden_steps[0] - 1:
                bucket.append(index + 1)
    assert early_bottom == [21, 38, 52, 58, 59, 63, 66, 97, 98, 120, 121, 136, 143]
    assert len(early_close) == 57


def test_golden_memos_match_for_unaffected_case() -> None:
    """The step-0 and post-run memo lines follow the Visual Plumes wording and number format (spec §9.2)."""
    result = run_reference("05_dense_brine_bottom")
    golden = load_golden("05_dense_brine_bottom")["plume"]["cases"][0]
    assert result.outputs[0].memos == golden["memos"]
    assert result.outputs[0].postmemos == golden["postmemos"]


def test_isopleth_closes_one_step_earlier_than_the_port() -> None:
    """09: ι is evaluated at the current step like the original program (spec §13), so the run stops at
    'isopleth closed' one step before the reference port; and the effective net dilution is c0/c, not
    m0·c0/c (spec §13 item 8)."""
    name = "09_bacteria_decay_isopleth"
    result = run_reference(name)
    golden = golden_rows_si(load_golden(name))
    plume = result.plume
    assert int(plume["step"].iloc[-1]) == max(golden) - 1
    assert plume["status"].iloc[-1] == "isopleth closed"
    assert plume["isopleth_factor"].iloc[-1] <= 0.0 < plume["isopleth_factor"].iloc[-2]
    c0 = result.engine_cases[0].diffuser.concentration
    effective = c0 / plume["concentration"]
    assert effective.iloc[1:].tolist() == pytest.approx(plume["net_dilution"].iloc[1:].tolist(), rel=1e-12)


def test_multiport_with_published_eos_stays_close_to_port() -> None:
    """03 uses the p,S,T equation of state, whose reference coefficients are wrong (spec §4.2, §13 item 4).
    With the published UNESCO coefficients densities shift by a few tenths of kg/m³ in the same direction
    for effluent and ambient, so the trap level moves only slightly: same stop reason, and final depth and
    dilution within 10 % of the port's."""
    name = "03_multiport_stratified_trap"
    result = run_reference(name)
    golden = golden_rows_si(load_golden(name))
    final = golden[max(golden)]
    plume = result.plume
    assert plume["status"].iloc[-1] == final["status"] == "trap level"
    assert plume["depth"].iloc[-1] == pytest.approx(final["depth"], rel=0.10)
    assert plume["dilution"].iloc[-1] == pytest.approx(final["dilution"], rel=0.10)
    from vp_jupyter.engine.seawater import density_pst
    assert density_pst(35.0, 25.0, 10000.0) == pytest.approx(1062.53817, abs=1e-4)   # UNESCO 1983 check value
    assert density_pst(35.0, 20.0, 0.0) == pytest.approx(1024.7630, abs=1e-3)        # port: 1024.9120
    assert plume["density"].iloc[0] == pytest.approx(density_pst(1.0, 18.0, 50.0), rel=1e-12)


def test_vector_averaged_current_turns_the_short_way() -> None:
    """06 averages current directions between 20° (25 m) and 0° (surface). The reference rotates
    counter-clockwise from the lower layer (towards 26°); the fix interpolates along the shorter arc, so
    the direction the plume sees stays between 0° and 20° (spec §5.3, §13 item 9)."""
    result = run_reference("06_crossflow_current")
    directions = result.plume["ambient_current_dir"]
    assert ((directions >= 0.0) & (directions <= 20.0 + 1e-9)).all(), directions.tolist()
    assert result.plume["status"].iloc[-1] == "MZ dis"
    # the mixing zone (60 m) is measured from the source, which sits at the origin here
    assert math.hypot(result.plume["x"].iloc[-1], result.plume["y"].iloc[-1]) >= 60.0
