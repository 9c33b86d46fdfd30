"""Property tests: any valid case runs, any invalid value is a CaseError naming its field, and no value can
make the engine return non-finite numbers as a result.

Hypothesis draws diffusers, ambient profiles and model settings over the physical range the inputs allow
(`vp_jupyter.inputs.fields`). A case drawn as valid must run: a CaseError there is a validation rule that
wrongly rejects good input. NaN, infinities and text in any numeric field must be rejected naming the field.
Any finite value anywhere (down to 1e-300 and up to 1e300) must give either a result whose every number
is finite, within the step bounds, or a CaseError whose every problem names a field.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vp_jupyter as vp
from vp_jupyter.engine.types import MAX_FF_ROWS, MAX_REVERSALS, MAX_STEPS, SIMILARITY_PROFILES
from vp_jupyter.inputs import AMBIENT_FIELDS, DIFFUSER_FIELDS, MODEL_FIELDS

finite = dict(allow_nan=False, allow_infinity=False)
# every problem of a CaseError starts with the path of a field: diffuser.values.x, ambient.layers[2].z, …
FIELD_PATH = re.compile(r"^(case\.)?(model|diffuser|ambient|timeseries|output)[.\[]")
NUMERIC_MODEL = [n for n, f in MODEL_FIELDS.items() if f.type in ("float", "int")]
NUMERIC_DIFFUSER = [n for n, f in DIFFUSER_FIELDS.items() if f.type in ("float", "int")]
AMBIENT_VALUES = list(AMBIENT_FIELDS)        # z and the nine variables


@st.composite
def valid_cases(draw) -> dict:
    n_ports = draw(st.integers(1, 40))
    port_depth = draw(st.floats(0.5, 200.0, **finite))
    brooks = draw(st.booleans())
    tidal = not brooks and draw(st.integers(0, 3)) == 0
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
    if brooks:
        diffuser["acute_mixing_zone"] = draw(st.floats(10.0, 5000.0, **finite))
    if n_ports > 1:
        diffuser["port_spacing"] = draw(st.floats(0.05, 50.0, **finite))
    n_layers = draw(st.integers(2, 6))
    gaps = draw(st.lists(st.floats(0.1, 60.0, **finite), min_size=n_layers - 1, max_size=n_layers - 1))
    depths = [0.0] + list(np.cumsum(gaps))
    layers = []
    for depth in depths:
        layer = {
            "z": float(depth),
            "current_speed": draw(st.floats(0.0, 2.0, **finite)),
            "current_dir": draw(st.floats(0.0, 360.0, **finite)),
            "salinity": draw(st.floats(0.0, 40.0, **finite)),
            "temperature": draw(st.floats(0.0, 35.0, **finite)),
            "bg_conc": draw(st.floats(0.0, 1e-4, **finite)),
            "decay_rate": draw(st.floats(0.0, 1e-3, **finite)),
        }
        if brooks:
            layer.update(ff_velocity=draw(st.floats(0.0, 1.0, **finite)),
                         ff_dir=draw(st.floats(0.0, 360.0, **finite)),
                         ff_diff_coeff=draw(st.floats(0.0, 0.01, **finite)))
        layers.append(layer)
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
    if brooks:
        model.update(brooks_far_field=True, ff_increment=draw(st.floats(1.0, 1000.0, **finite)),
                     farfield_diffusivity=draw(st.sampled_from(["CONSTANT", "POWER_4_3"])),
                     estimate_ff_background=draw(st.booleans()), output_all_ff_increments=draw(st.booleans()))
    case = {"name": "random", "model": model, "diffuser": {"values": diffuser, "units": {}},
            "ambient": {"units": {}, "layers": layers}}
    if tidal:
        model.update(tidal_pollution_buildup=True, tpb_coast_bin=draw(st.integers(10, 99)),
                     tpb_channel_width=draw(st.floats(10.0, 1000.0, **finite)),
                     tpb_segment_length=draw(st.floats(10.0, 500.0, **finite)))
        flows = draw(st.lists(st.floats(1e-4, 5.0, **finite), min_size=2, max_size=4))
        del diffuser["effluent_flow"]
        case["timeseries"] = {"start_time": 0, "end_time": len(flows) - 1, "time_increment": 1, "units": "hr",
                              "diffuser": {"effluent_flow": {"increment_hours": 1, "csv": [[f] for f in flows]}}}
    return case


def assert_finite_result(result: "vp.Result") -> None:
    """Every number of the result is finite and the step bounds hold."""
    for output in result.outputs:
        assert output.stop_reason, f"no stop reason; statuses {output.statuses}"
        assert output.steps[-1] <= MAX_STEPS + 1
    numbers = result.plume.drop(columns=["case", "step", "status"]).to_numpy(dtype=float)
    assert np.isfinite(numbers).all()
    if not result.farfield.empty:
        assert np.isfinite(result.farfield.drop(columns=["case"]).to_numpy(dtype=float)).all()
    for farfield in result.farfield_outputs:
        assert len(farfield.steps) <= MAX_FF_ROWS
    assert all(math.isfinite(b) for b in result.tidal.buildup)


def assert_names_fields(err: "vp.CaseError") -> None:
    assert err.problems
    for problem in err.problems:
        assert FIELD_PATH.match(problem), f"a problem that names no field: {problem!r}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_cases())
def test_random_valid_case_runs_with_finite_numbers(case: dict) -> None:
    assert_finite_result(vp.run(case, store=False))      # a CaseError here fails the test


# (where, field) pairs of every numeric input: model parameters, diffuser values, any layer's values
numeric_fields = st.one_of(
    st.tuples(st.just("model"), st.sampled_from(NUMERIC_MODEL)),
    st.tuples(st.just("diffuser"), st.sampled_from(NUMERIC_DIFFUSER)),
    st.tuples(st.integers(0, 5), st.sampled_from(AMBIENT_VALUES)),
)


def put(case: dict, where, field: str, value) -> str:
    """Set the value at (where, field) and return the path a problem with it starts with."""
    if where == "model":
        case["model"][field] = value
        return f"model.{field}"
    if where == "diffuser":
        case["diffuser"]["values"][field] = value
        return f"diffuser.{field}"
    layer = where % len(case["ambient"]["layers"])
    case["ambient"]["layers"][layer][field] = value
    return f"ambient.layers[{layer}].{field}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_cases(), numeric_fields,
       st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf),
                 st.text(st.characters(categories=("L",)), min_size=1, max_size=5), st.just("1e999")))
def test_nan_infinity_and_text_in_a_numeric_field_raise_case_error_naming_it(case, where_field, value) -> None:
    where, field = where_field
    path = put(case, where, field, value)
    with pytest.raises(vp.CaseError) as err:
        vp.run(case, store=False)
    assert any(p.startswith(path) for p in err.value.problems), (path, err.value.problems)


extreme = st.one_of(
    st.floats(**finite),
    st.sampled_from([1e300, -1e300, 1e-300, -1e-300, 1e308, -1e308, 5e-324, 0.0]),
    st.floats(-1e6, 1e6, **finite),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_cases(), numeric_fields, extreme)
def test_any_finite_value_anywhere_gives_finite_numbers_or_a_case_error_naming_a_field(case, where_field,
                                                                                      value) -> None:
    where, field = where_field
    put(case, where, field, value)
    try:
        result = vp.run(case, store=False)
    except vp.CaseError as err:
        assert_names_fields(err)
        return
    assert_finite_result(result)
