"""Bounded work and finite results (README "Limits"): the engine never returns non-finite numbers as a
result, and no accepted input makes it do unbounded work (far-field rows, tidal-buildup window shifts,
ambient fill). Speed is measured by `python benchmarks/run.py limits`, never asserted here."""
from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from builders import minimal_case
from conftest import REFERENCE, require_shared

import vp_jupyter as vp
from vp_jupyter import legacy
from vp_jupyter.engine.ambient import fill_values
from vp_jupyter.engine.series import _non_finite, run_case
from vp_jupyter.engine.tidal import BINS, TidalChannel
from vp_jupyter.engine.types import MAX_FF_ROWS
from vp_jupyter.inputs.fields import LIMITS

EXAMPLES = REFERENCE.parent / "spec" / "examples"


@pytest.mark.parametrize("change", [{"diameter": 1e-300}, {"effluent_flow": 1e308}, {"salinity": 1e308}])
def test_the_engine_refuses_a_case_it_cannot_compute_instead_of_returning_non_finite_numbers(change) -> None:
    """Below the input layer (which rejects these values) the engine itself, given an SI case that makes
    a step divide by zero or overflow, returns a refusal naming the model step rather than rows of NaN
    ending in "max iterations"."""
    engine_case = vp.Case.load(minimal_case("guard")).engine_cases()[0]
    plume, farfield = run_case(replace(engine_case, diffuser=replace(engine_case.diffuser, **change)))
    assert plume.error and plume.error.startswith("the near-field (UM3) model "), plume.error
    assert "outside the range it can handle" in plume.error


def test_the_non_finite_check_names_the_first_bad_value_and_only_a_bad_one() -> None:
    """Column by column, step by step; finite values whose sum overflows are no refusal (the check sums a
    column first and looks at its values only when the sum is not finite)."""
    inf, nan = float("inf"), float("nan")
    assert _non_finite("near-field (UM3)", [0, 5], {"dilution": [1e308, 1e308], "x": [-1e308, -1e308]}) is None
    assert _non_finite("near-field (UM3)", [], {"dilution": []}) is None
    text = _non_finite("near-field (UM3)", [0, 5, 9], {"dilution": [1.0, 2.0, 3.0], "x": [0.0, inf, nan],
                                                       "y": [nan, 0.0, 0.0]})
    assert text.startswith("the near-field (UM3) model produced a x of inf at step 5: "), text
    text = _non_finite("Brooks far-field", [3, 4], {"width": [inf, -inf]})     # a sum of nan
    assert text.startswith("the Brooks far-field model produced a width of inf at step 3: "), text


def test_far_field_rows_are_bounded_with_a_memo() -> None:
    """Legacy example 2 with a far-field increment of 1e-6 m (farfieldCoeff) asked for about 1e8 rows
    (a worker grew by 100 MB/s to 10 GB); now at most MAX_FF_ROWS rows are written, the last one still the
    far field's end state beyond the mixing-zone distance, and a memo says why."""
    data = json.loads(require_shared(EXAMPLES / "example2.projectData.json").read_text())
    files = {p.name[len("example2."):-len(".csv")]: p.read_bytes() for p in EXAMPLES.glob("example2.*-file.csv")}
    data["farfieldCoeff"] = 1e-6
    result = vp.run(legacy.parse_run_request({"projectData": json.dumps(data)}, files), store=False)
    assert LIMITS["far_field_rows"] == MAX_FF_ROWS
    farfield = result.farfield
    assert len(farfield) == MAX_FF_ROWS
    assert result.farfield_memos[1][-1].startswith(f"Far-field output limited to {MAX_FF_ROWS} rows")
    assert (farfield["distance"].diff().iloc[1:] > 0).all()
    assert farfield["distance"].iloc[-1] >= result.engine_cases[0].diffuser.acute_mixing_zone


def test_a_long_tidal_drift_shifts_the_window_in_one_move() -> None:
    """A 10 m/s current over an hour in 0.1 m bins carries the plume 360 000 bins downstream: the window
    moves once, by a multiple of 10 bins, emptying it (the port's loop shifted 10 bins at a time)."""
    tide = TidalChannel(segment_length=0.1, channel_width=40.0, bottom_depth=4.0, upstream_dir=180.0,
                        coast_bin=10, coast_concentration=0.0, time_step=3600.0)
    for _ in range(3):
        c = tide.after_case(flow=0.5, initial_mass=1.0, initial_pollutant=1e-3, current_speed=10.0,
                            current_dir=0.0, decay_rate=0.0)
        assert c >= 0.0 and len(tide.pollutant) == len(tide.volume) == BINS
    assert tide.shifted_downstream and 0 <= tide.i < BINS


def linear_fill(depths, values, surface, bottom, bottom_depth):
    """spec §5.2 written the direct way (a scan over the points for every depth), to check the fast fill."""
    points = sorted((d, v) for d, v in zip(depths, values) if v is not None)
    out = []
    for d in depths:
        match = [v for p, v in points if p == d]
        if match:
            out.append(match[0])
            continue
        above = [(p, v) for p, v in points if p < d]
        below = [(p, v) for p, v in points if p > d]
        if above and below:
            (da, va), (db, vb) = above[-1], below[0]
            out.append(va + (d - da) * (vb - va) / (db - da))
        else:
            out.append(fill_values([d], values, surface, bottom, bottom_depth, point_depths=depths)[0])
    return out


def test_the_fast_ambient_fill_agrees_with_the_direct_one() -> None:
    rng = random.Random(4)
    for _ in range(50):
        n = rng.randint(2, 60)
        depths = sorted(rng.sample(range(1, 10_000), n))
        depths = [d / 10.0 for d in depths]
        values = [rng.uniform(-5, 5) if rng.random() < 0.4 else None for _ in depths]
        values[rng.randrange(n)] = 1.0
        for surface in ("CONSTANT", "EXTRAPOLATED", "LINEAR_TO_ZERO"):
            for bottom in ("CONSTANT", "EXTRAPOLATED", "LINEAR_TO_ZERO"):
                fast = fill_values(depths, values, surface, bottom, depths[-1] + 5.0)
                assert fast == pytest.approx(linear_fill(depths, values, surface, bottom, depths[-1] + 5.0),
                                             rel=1e-12, abs=1e-12)
