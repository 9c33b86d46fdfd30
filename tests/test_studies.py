"""Studies: outcome statistics of a series, uncertainty (Monte Carlo) and sensitivity (SALib) studies,
invalid sampled members, and a study as one entry of the archive store.

Cases are built here (the packaged example case, its mixing zone moved to 20 m so the near field reaches
it); the studies share one spawned pool of 2 workers (`pool`, conftest.py).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import vp_jupyter as vp
from builders import complete_case
from vp_jupyter.cli import example_case_path
from vp_jupyter.inputs import CaseError
from vp_jupyter.studies import sampling
from vp_jupyter.studies.outcomes import outcome_table
from vp_jupyter.store import RunStore


def outfall(mixing_zone: float = 20.0) -> dict:
    case = json.loads(example_case_path().read_text())
    case["diffuser"]["values"]["acute_mixing_zone"] = mixing_zone
    return case


def study_of(inputs: dict, n: int, pool, **options):
    return vp.uncertainty(outfall(), inputs, n=n, seed=options.pop("seed", 7), executor=pool, progress=False,
                          store=options.pop("store", False), **options)


# ----------------------------------------------------------------------------------------- uncertainty

def test_an_input_with_zero_spread_gives_identical_members(pool) -> None:
    study = study_of({"diffuser.effluent_flow": ["normal", 0.15, 0.0],
                      "ambient.current_speed": ["uniform", 0.1, 0.1]}, 6, pool)
    members = study.members
    assert (members["status"] == "ok").all() and len(members) == 6
    assert set(members["diffuser.effluent_flow"]) == {0.15} and set(members["ambient.current_speed"]) == {0.1}
    outcomes = members.drop(columns=["member"])
    assert (outcomes.nunique(dropna=False) == 1).all(), outcomes.nunique(dropna=False)
    # and they are the deterministic run of that case
    case = outfall()
    case["diffuser"]["values"]["effluent_flow"] = 0.15
    for layer in case["ambient"]["layers"]:
        if layer.get("current_speed") is not None:
            layer["current_speed"] = 0.1
    single = outcome_table(vp.run(case, store=False))
    assert members["mz_dilution"].iloc[0] == single["mz_dilution"].iloc[0]
    assert study.fan["p05"].equals(study.fan["p95"])


def test_quantiles_move_the_physical_way_when_only_the_flow_is_uncertain(pool) -> None:
    low = study_of({"diffuser.effluent_flow": ["uniform", 0.03, 0.06]}, 24, pool)
    high = study_of({"diffuser.effluent_flow": ["uniform", 0.2, 0.3]}, 24, pool)
    q_low, q_high = low.quantiles(), high.quantiles()
    assert list(q_low.index) == [0.05, 0.5, 0.95]
    # more effluent through the same port into the same sea: less dilution, more concentration at the boundary
    assert (q_high["mz_dilution"] < q_low["mz_dilution"]).all(), (q_low["mz_dilution"], q_high["mz_dilution"])
    assert (q_high["mz_concentration"] > q_low["mz_concentration"]).all()
    # and within one study the dilution falls as the sampled flow rises (rank correlation)
    both = pd.concat([low.members, high.members])
    assert both["diffuser.effluent_flow"].corr(both["mz_dilution"], method="spearman") < -0.9


def test_sampled_values_outside_the_valid_range_are_reported_per_member(pool) -> None:
    study = study_of({"diffuser.effluent_flow": ["normal", 0.05, 0.05]}, 40, pool, seed=3)
    invalid = study.invalid
    assert 0 < len(invalid) < 40
    assert (invalid["diffuser.effluent_flow"] <= 0).all()
    assert all(p.startswith("diffuser.effluent_flow: must be > 0") for p in invalid["problem"])
    ran = study.members[study.members["status"] == "ok"]
    assert len(ran) + len(invalid) == 40 and ran["mz_dilution"].notna().all()
    assert invalid[["member", "diffuser.effluent_flow", "problem"]].shape[1] == 3
    summary = study.summary()
    assert summary["invalid"] == len(invalid) and summary["ran"] == len(ran)


def test_exceedance_fractions_match_a_direct_count(pool) -> None:
    study = study_of({"diffuser.effluent_flow": ["lognormal", 0.1, 1.6],
                      "ambient.current_speed": ["triangular", 0.05, 0.12, 0.3]}, 30, pool,
                     target_dilution=150, concentration_limit=1.5)
    stats = study.statistics(target_dilution=150, concentration_limit=1.5)
    table = study.members[study.members["status"] == "ok"]
    dilution, concentration = table["mz_dilution"].to_numpy(), table["mz_concentration"].to_numpy()
    assert stats.fraction_below(150) == np.count_nonzero(dilution < 150) / len(dilution)
    assert stats.fraction_above(1.5) == np.count_nonzero(concentration > 1.5) / len(concentration)
    assert 0 < stats.fraction_below(150) < 1          # the threshold splits the members: a real count
    curve = stats.exceedance("mz_dilution")
    for value, below, above in curve[["value", "fraction_at_or_below", "fraction_above"]].itertuples(index=False):
        assert below == np.count_nonzero(dilution <= value) / len(dilution)
        assert above == pytest.approx(np.count_nonzero(dilution > value) / len(dilution), abs=1e-12)
    assert curve["count"].sum() == len(dilution)
    summary = study.summary()
    assert summary["fraction_below_target"] == stats.fraction_below(150)
    assert summary["fraction_above_limit"] == stats.fraction_above(1.5)


def test_bad_keys_and_distributions_are_case_errors_naming_them() -> None:
    with pytest.raises(CaseError) as caught:
        vp.uncertainty(outfall(), {"diffuser.flow": ["normal", 1, 0.1]}, n=4, store=False)
    assert "study key 'diffuser.flow'" in str(caught.value)
    with pytest.raises(CaseError, match=r"diffuser.effluent_flow: unknown distribution 'gauss'"):
        vp.uncertainty(outfall(), {"diffuser.effluent_flow": ["gauss", 1, 0.1]}, n=4, store=False)
    with pytest.raises(CaseError, match=r"diffuser.effluent_flow: uniform takes 2 number\(s\)"):
        vp.uncertainty(outfall(), {"diffuser.effluent_flow": ["uniform", 1]}, n=4, store=False)
    with pytest.raises(CaseError, match=r"n must be a whole number"):
        vp.uncertainty(outfall(), {"diffuser.effluent_flow": ["uniform", 0.1, 0.2]}, n=0, store=False)


def test_latin_hypercube_puts_one_point_in_every_stratum_and_seeds_repeat() -> None:
    points = sampling.unit_sample(50, 3, "lhs", seed=11)
    for column in points.T:
        assert sorted(np.floor(column * 50).astype(int)) == list(range(50))
    assert np.array_equal(points, sampling.unit_sample(50, 3, "lhs", seed=11))
    sobol = sampling.unit_sample(64, 2, "sobol", seed=1)
    assert sobol.shape == (64, 2) and ((sobol >= 0) & (sobol < 1)).all()
    # a scipy frozen distribution is used as it is
    from scipy import stats

    values = sampling.sample({"k": sampling.distribution("k", stats.norm(10, 2))}, 2000, "lhs", seed=5)["k"]
    assert abs(np.mean(values) - 10) < 0.05 and abs(np.std(values) - 2) < 0.1


# ----------------------------------------------------------------------------------------- sensitivity

def test_sobol_indices_find_the_wide_input_and_ignore_the_negligible_one(pool) -> None:
    study = vp.sensitivity(outfall(), {"diffuser.effluent_flow": [0.03, 0.3], "diffuser.temperature": [24.0, 24.0001]},
                           method="sobol", n=32, seed=4, executor=pool, progress=False, store=False)
    indices = study.indices.set_index("input")
    assert len(study.members) == 32 * 4
    assert indices.loc["diffuser.effluent_flow", "ST"] >= 0.9
    assert indices.loc["diffuser.temperature", "ST"] <= 0.05
    assert list(study.indices.columns) == ["input", "S1", "S1_conf", "ST", "ST_conf"]
    figure = study.plot_indices()
    assert {bar.get_gid() for bar in figure.axes[0].patches} >= {"S1", "ST"}


def test_morris_ranks_the_wide_input_first(pool) -> None:
    study = vp.sensitivity(outfall(), {"diffuser.effluent_flow": [0.03, 0.3], "diffuser.temperature": [24.0, 24.0001]},
                           method="morris", n=6, seed=4, executor=pool, progress=False, store=False)
    indices = study.indices.set_index("input")
    assert len(study.members) == 6 * 3
    assert indices.loc["diffuser.effluent_flow", "mu_star"] > 1000 * indices.loc["diffuser.temperature", "mu_star"]


def test_sensitivity_bounds_the_input_layer_refuses_are_named() -> None:
    with pytest.raises(CaseError) as caught:
        vp.sensitivity(outfall(), {"diffuser.effluent_flow": [-0.1, 0.3]}, n=4, store=False)
    assert "sensitivity bound diffuser.effluent_flow=-0.1: diffuser.effluent_flow: must be > 0" in str(caught.value)


# ----------------------------------------------------------------------------------------- series, store

def test_statistics_of_a_year_like_series(tmp_path) -> None:
    result = vp.run(complete_case("series stats", cases=48), store=False)
    stats = vp.statistics(result, target_dilution=60)
    outcomes = stats.outcomes
    assert len(outcomes) == 48 and list(outcomes["case"]) == list(range(1, 49))
    # with the mixing zone out of reach the boundary value is the end of the near field (conservative)
    final = result.summary()
    ended = outcomes["mz_source"] == "end of near field"
    assert np.allclose(outcomes.loc[ended, "mz_dilution"], final.loc[ended, "dilution"])
    table = stats.percentiles([10, 50, 90], columns=["mz_dilution"])
    assert np.allclose(table["mz_dilution"], np.percentile(outcomes["mz_dilution"], [10, 50, 90]))
    assert stats.fraction_below(60) == (outcomes["mz_dilution"] < 60).mean()
    fig = stats.plot_exceedance()
    assert any(line.get_gid() == "exceedance" for line in fig.axes[0].lines)


def test_a_study_is_one_store_entry_listed_and_loaded_back(pool, tmp_path) -> None:
    store = RunStore(tmp_path / "store")
    study = study_of({"diffuser.effluent_flow": ["uniform", 0.05, 0.2]}, 8, pool, store=store,
                     target_dilution=100)
    assert study.run_id is not None
    runs = vp.runs(store=store)
    assert len(runs) == 1 and runs["kind"].iloc[0] == "study" and runs["id"].iloc[0] == study.run_id
    loaded = vp.load(study.run_id, store=store)
    assert isinstance(loaded, vp.Study) and loaded.run_id == study.run_id
    pd.testing.assert_frame_equal(loaded.members, study.members, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.fan, study.fan, check_dtype=False)
    assert loaded.settings["target_dilution"] == 100 and loaded.inputs == study.inputs
    assert loaded.summary() == study.summary()
    record = store.get(study.run_id)
    assert record.kind == "study" and "study.json" in record.files and "result.json" not in record.files


def test_outcomes_at_the_mixing_zone_boundary_come_from_the_far_field_when_it_reaches_it() -> None:
    result = vp.run(complete_case("far mz", brooks=True), store=False)
    row = outcome_table(result).iloc[0]
    far = result.farfield
    assert row["mz_source"] == "far field" and row["mz_distance"] == 500.0
    assert math.isclose(row["mz_dilution"], np.interp(500.0, far["distance"], far["dilution"]))
    assert row["ff_dilution"] == far["dilution"].iloc[-1]


def test_a_server_study_stopped_midway_is_recorded_as_cancelled(tmp_path) -> None:
    """StudyJobs.shutdown (the server stopping) terminates the study's workers; the store then holds the
    study as cancelled, with nothing half-written."""
    from builders import assert_no_partial_runs, wait_until
    from vp_jupyter.studies.jobs import StudyJobs, parse_request

    store = RunStore(tmp_path / "store")
    jobs = StudyJobs(store, max_workers=1)
    request = parse_request({"study": "uncertainty", "case": outfall(), "n": 2000, "seed": 1,
                             "inputs": {"diffuser.effluent_flow": ["uniform", 0.05, 0.2]}})
    run_id = jobs.submit(request, owner="tester")
    wait_until(lambda: (jobs.status(run_id) or {}).get("progress", {}).get("done", 0) > 0, "members to run", 120)
    jobs.shutdown()
    record = wait_until(lambda: store.exists(run_id) and store.get(run_id), "the study to be recorded", 120)
    assert record.status == "cancelled" and record.kind == "study" and "stopped" in record.error
    wait_until(lambda: jobs.status(run_id) is None, "the job to leave the table of active studies", 30)
    assert_no_partial_runs(store)


def test_study_requests_and_thresholds_are_checked_before_anything_runs() -> None:
    from vp_jupyter.studies.jobs import parse_request

    with pytest.raises(CaseError, match=r"sensitivity bound diffuser.effluent_flow: needs \[low, high\]"):
        parse_request({"study": "sensitivity", "case": outfall(), "bounds": {"diffuser.effluent_flow": [0.3, 0.1]}})
    with pytest.raises(CaseError, match=r"unknown key\(s\) inputs"):
        parse_request({"study": "sensitivity", "case": outfall(), "inputs": {}})
    with pytest.raises(CaseError, match=r"target_dilution must be a number > 0 \(got -5\)"):
        vp.uncertainty(outfall(), {"diffuser.effluent_flow": ["uniform", 0.1, 0.2]}, n=2, target_dilution=-5,
                       store=False)


class InProcess:
    """An executor that runs each task at once in this process (so a patched engine applies)."""
    max_workers = 1

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as error:       # handed to the caller through the future, as a pool does
            future.set_exception(error)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


def test_members_the_model_refuses_are_reported_and_the_others_run(monkeypatch) -> None:
    from vp_jupyter.engine import series

    real = series.run_case

    def refuse_big_flows(case):
        plume, far = real(case)
        if case.diffuser.effluent_flow > 0.15:
            plume.error = "the near-field (UM3) model failed (test): the inputs are outside the range it can handle"
        return plume, far

    monkeypatch.setattr(series, "run_case", refuse_big_flows)
    study = vp.uncertainty(outfall(), {"diffuser.effluent_flow": ["uniform", 0.05, 0.25]}, n=30, seed=5,
                           executor=InProcess(), progress=False, store=False)
    refused = study.members[study.members["status"] == "refused"]
    ran = study.members[study.members["status"] == "ok"]
    assert len(refused) == (study.members["diffuser.effluent_flow"] > 0.15).sum() > 0
    assert (ran["diffuser.effluent_flow"] <= 0.15).all() and ran["mz_dilution"].notna().all()
    assert all("the near-field (UM3) model failed (test)" in p for p in refused["problem"])
    assert refused["mz_dilution"].isna().all() and study.summary()["invalid"] == len(refused)
