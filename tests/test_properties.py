"""Property tests: any valid case completes with a stop reason, any other case raises CaseError.

Hypothesis draws diffusers, ambient profiles and model settings over the whole physical range the
inputs allow (and beyond it, for the CaseError branch); the engine must never raise anything else,
never loop past the 2000-step bound (spec §0, §7.6) and never write non-finite numbers.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vp_jupyter as vp
from vp_jupyter.engine.types import MAX_REVERSALS, SIMILARITY_PROFILES

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def valid_cases(draw) -> dict:
    n_ports = draw(st.integers(1, 40))
    port_depth = draw(st.floats(0.5, 200.0, **finite))
    diffuser = {
        "diameter": draw(st.floats(0.005, 3.0, **finite)),
        "vertical_angle": draw(st.floats(-90.0, 90.0, **finite)),
        "horizontal_angle": draw(st.floats(0.0, 360.0, **finite)),
        "num_ports": n_ports,
        "acute_mixing_zone": draw(st.floats(0.0, 5000.0, **finite)),
        "isopleth": draw(st.floats(0.0, 1e-3, **finite)),
        "depth": port_depth,
        "effluent_flow": draw(st.floats(1e-5, 50.0, **finite)),
        "salinity": draw(st.floats(0.0, 70.0, **finite)),
        "temperature": draw(st.floats(0.0, 40.0, **finite)),
        "concentration": draw(st.floats(1e-9, 1.0, **finite)),
    }
    if n_ports > 1:
        diffuser["port_spacing"] = draw(st.floats(0.05, 50.0, **finite))
    n_layers = draw(st.integers(2, 6))
    gaps = draw(st.lists(st.floats(0.1, 60.0, **finite), min_size=n_layers - 1, max_size=n_layers - 1))
    depths = [0.0] + list(np.cumsum(gaps))
    layers = []
    for depth in depths:
        layers.append({
            "z": float(depth),
            "current_speed": draw(st.floats(0.0, 2.0, **finite)),
            "current_dir": draw(st.floats(0.0, 360.0, **finite)),
            "salinity": draw(st.floats(0.0, 40.0, **finite)),
            "temperature": draw(st.floats(0.0, 35.0, **finite)),
            "bg_conc": draw(st.floats(0.0, 1e-4, **finite)),
            "decay_rate": draw(st.floats(0.0, 1e-3, **finite)),
        })
    model = {
        "max_reversals": draw(st.sampled_from(MAX_REVERSALS)),
        "similarity_profile": draw(st.sampled_from(SIMILARITY_PROFILES)),
        "at_equilibrium": draw(st.booleans()),
        "current_vector_averaging": draw(st.booleans()),
        "allow_induced_current": draw(st.booleans()),
        "report_effective_dillution": draw(st.booleans()),
        "stop_on_bottom_hit": draw(st.booleans()),
        "dont_stop_on_surface_hit": draw(st.booleans()),
        "contraction_coeff": draw(st.floats(0.5, 1.0, **finite)),
        "write_step_freq": draw(st.integers(1, 500)),
    }
    return {"name": "random", "model": model, "diffuser": {"values": diffuser, "units": {}},
            "ambient": {"units": {}, "layers": layers}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_cases())
def test_random_valid_case_completes_with_a_stop_reason(case: dict) -> None:
    try:
        result = vp.run(case)
    except vp.CaseError as err:          # e.g. a port below a random bottom: rejected, never crashed
        assert str(err)
        return
    for output in result.outputs:
        assert output.stop_reason, f"no stop reason; statuses {output.statuses}"
        assert output.steps[-1] <= 2001
    numbers = result.plume.drop(columns=["case", "step", "status"]).to_numpy(dtype=float)
    assert np.isfinite(numbers).all()


@settings(max_examples=150, deadline=None)
@given(valid_cases(), st.sampled_from(["diameter", "effluent_flow", "depth", "salinity", "temperature",
                                        "concentration", "num_ports", "vertical_angle"]),
       st.one_of(st.just(math.nan), st.just(math.inf), st.floats(-1e6, 0.0, **finite), st.text(max_size=5)))
def test_random_invalid_diffuser_value_raises_case_error_naming_the_field(case, field, value) -> None:
    case["diffuser"]["values"][field] = value
    try:
        vp.run(case)
    except vp.CaseError as err:
        assert f"diffuser.values.{field}" in str(err) or f"diffuser.{field}" in str(err), str(err)
    # some values stay valid (e.g. a vertical angle of -5 or a temperature of 0): they must simply run
