"""Physics checks of the UM3 engine that need no reference output.

Each test states the derivation it relies on; the cases are built here, in SI, as case dicts.
"""
from __future__ import annotations

import numpy as np
import pytest

import vp_jupyter as vp
from vp_jupyter.engine.seawater import density_st

G = 9.807


def still_water_case(*, port_depth: float, surface_salinity: float, bottom_salinity: float,
                     diameter: float = 0.5, flow: float = 0.05, vertical_angle: float = 90.0,
                     current: float = 0.0, model: dict | None = None, **diffuser) -> dict:
    values = {"diameter": diameter, "vertical_angle": vertical_angle, "horizontal_angle": 0.0,
              "num_ports": 1, "acute_mixing_zone": 1000.0, "isopleth": 0.0, "depth": port_depth,
              "effluent_flow": flow, "salinity": 0.0, "temperature": 15.0, "concentration": 1.0}
    values.update(diffuser)
    return {
        "name": "physics",
        "model": {"write_step_freq": 1, **(model or {})},
        "diffuser": {"values": values, "units": {}},
        "ambient": {"units": {}, "layers": [
            {"z": 0.0, "current_speed": current, "current_dir": 0.0, "salinity": surface_salinity,
             "temperature": 15.0, "bg_conc": 0.0, "decay_rate": 0.0},
            {"z": port_depth, "salinity": bottom_salinity},
        ]},
    }


def test_pollutant_mass_is_conserved_and_dilution_never_decreases() -> None:
    """Without decay, background or buildup the pollutant update (spec §7.4 item 15) is
    M_p ← M_p + dm·c_a with c_a = 0, so M_p stays c0·m0 exactly; entrainment only adds mass
    (dm ≥ 0), so the dilution S = m·ρ0/(ρ·m0) cannot fall. With a background c_a the excess over
    background is conserved instead: M_p − c_a·m = (c0 − c_a)·m0."""
    case = still_water_case(port_depth=30.0, surface_salinity=33.0, bottom_salinity=33.5,
                            vertical_angle=30.0, current=0.1, concentration=2.0e-3)
    result = vp.run(case)
    plume = result.plume
    mass0 = plume["mass"].iloc[0]
    assert plume["pollutant_mass"].to_numpy() == pytest.approx(2.0e-3 * mass0, rel=1e-12)
    assert (np.diff(plume["dilution"].to_numpy()) >= 0.0).all()
    assert plume["dilution"].iloc[-1] > 10.0

    background = 1.0e-4
    case["ambient"]["layers"][0]["bg_conc"] = background
    plume = vp.run(case).plume
    excess = plume["pollutant_mass"] - background * plume["mass"]
    assert excess.to_numpy() == pytest.approx((2.0e-3 - background) * mass0, rel=1e-9)


def plume_buoyancy_flux(case: dict) -> tuple[float, float]:
    """B = g′Q with g′ = g(ρa − ρ0)/ρa at the port (S,T equation of state), and Q."""
    values = case["diffuser"]["values"]
    rho_a = density_st(case["ambient"]["layers"][1]["salinity"], 15.0)
    rho_0 = density_st(values["salinity"], values["temperature"])
    return G * (rho_a - rho_0) / rho_a * values["effluent_flow"], values["effluent_flow"]


def test_pure_plume_dilution_grows_as_rise_to_five_thirds() -> None:
    """A round buoyant plume in still uniform water is self-similar once momentum no longer matters
    (Morton, Taylor & Turner 1956): with buoyancy flux B = g′Q conserved, dimensional analysis leaves
    volume flux Q(z) ∝ B^(1/3) z^(5/3), so the flux-averaged dilution S = Q(z)/Q grows as z^(5/3) and
    S·Q/(B^(1/3) z^(5/3)) is a constant, 0.09–0.16 in the literature (Fischer et al. 1979; Lee & Chu 2003).
    The port is large and slow (jet length M^(3/4)/B^(1/2) ≈ 0.4 m ≪ 50 m depth), the current exactly
    zero (the reference crashes on a vertical jet in still water, spec §13 item 7)."""
    port_depth = 50.0
    case = still_water_case(port_depth=port_depth, surface_salinity=30.0, bottom_salinity=30.0)
    b_flux, flow = plume_buoyancy_flux(case)
    plume = vp.run(case).plume
    assert plume["status"].iloc[-1] == "surface"
    rise = port_depth - plume["depth"].to_numpy()
    dilution = plume["dilution"].to_numpy()
    window = (rise >= 0.4 * port_depth) & (rise <= 0.9 * port_depth)
    assert window.sum() >= 10
    slope = np.polyfit(np.log(rise[window]), np.log(dilution[window]), 1)[0]
    assert slope == pytest.approx(5.0 / 3.0, abs=0.1)
    coefficient = dilution[window] * flow / (b_flux ** (1.0 / 3.0) * rise[window] ** (5.0 / 3.0))
    assert ((coefficient > 0.09) & (coefficient < 0.16)).all(), coefficient


def test_plume_in_linear_stratification_traps_and_rises_as_mtt() -> None:
    """In linearly stratified still water (N² = −(g/ρ)dρ/dz constant) the only length built from B and N
    is (B/N³)^(1/4); Morton, Taylor & Turner (1956) find the plume reaches neutral buoyancy (trap level)
    at about 2.8 and its maximum rise at about 3.8 of that length. Salinity varies linearly with depth,
    which makes density linear in depth to within 0.1 % for the S,T equation of state. UM3 lands at
    about 3.2 and 4.1 of the length scale here (slightly above MTT, as its top-hat aspiration
    coefficient 0.1 entrains a little less than MTT's Gaussian α ≈ 0.08–0.09 over the same rise)."""
    port_depth = 100.0
    case = still_water_case(port_depth=port_depth, surface_salinity=30.0, bottom_salinity=31.0,
                            diameter=0.2, model={"max_reversals": "MAX_RISE_OR_FALL"})
    b_flux, _ = plume_buoyancy_flux(case)
    rho_bottom, rho_top = density_st(31.0, 15.0), density_st(30.0, 15.0)
    n_squared = G / rho_bottom * (rho_bottom - rho_top) / port_depth
    scale = (b_flux / n_squared ** 1.5) ** 0.25
    plume = vp.run(case).plume
    rise = port_depth - plume["depth"]
    trap_rows = plume[plume["status"].str.contains("trap level")]
    assert len(trap_rows) >= 1
    trap_rise = port_depth - trap_rows["depth"].iloc[0]
    assert trap_rise == pytest.approx(2.8 * scale, rel=0.15)
    assert plume["status"].iloc[-1] == "local maximum rise or fall"
    assert rise.max() == pytest.approx(3.8 * scale, rel=0.10)


def test_density_difference_is_the_steps_buoyancy() -> None:
    """spec §7.4 item 2: the step's Δρ = ρ_a − ρ uses the ambient the element entrained during the step,
    which is the ambient carried over from the previous step (one step behind, §5.4): the previous row's
    ambient density when every step is written. A 'trap level' row is where that Δρ changes sign."""
    case = still_water_case(port_depth=100.0, surface_salinity=30.0, bottom_salinity=31.0,
                            diameter=0.2, model={"max_reversals": "SECOND_TRAP_LEVEL"})
    plume = vp.run(case, store=False).plume
    assert (plume["step"].diff().iloc[1:] == 1).all()
    drho = plume["density_difference"].to_numpy()
    expected = plume["ambient_density"].to_numpy()[:-1] - plume["density"].to_numpy()[1:]
    assert drho[1:] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert drho[0] == plume["ambient_density"].iloc[0] - plume["density"].iloc[0]
    traps = plume.index[plume["status"].str.contains("trap level")]
    assert len(traps) == 2
    for i in traps:
        assert drho[i] * drho[i - 1] < 0.0
    crossings = np.flatnonzero(drho[1:] * drho[:-1] < 0.0) + 1
    assert crossings.tolist() == traps.tolist()


def test_horizontal_angle_is_the_direction_of_travel() -> None:
    """spec §13 item 9 (fixed; the goldens' column is outside the strict comparison): the horizontal
    angle is the direction of the horizontal velocity, counter-clockwise from east in 0–360°, also while
    the plume descends. Each step moves the element by V·dt (§7.4 item 5), so with every step written the
    angle equals the direction of the step's displacement. A dense jet discharged towards −y (270°)
    into a weak eastward current rises, then sinks."""
    case = still_water_case(port_depth=20.0, surface_salinity=30.0, bottom_salinity=30.0, current=0.05,
                            vertical_angle=60.0, salinity=45.0, model={"max_reversals": "SECOND_MAX_RISE_OR_FALL"})
    case["diffuser"]["values"]["horizontal_angle"] = 270.0
    plume = vp.run(case, store=False).plume
    assert (plume["step"].diff().iloc[1:] == 1).all()
    descending = plume["vertical_angle"] < 0.0
    assert descending.any() and (~descending).any()
    travel = np.degrees(np.arctan2(np.diff(plume["y"]), np.diff(plume["x"]))) % 360.0
    assert plume["horizontal_angle"].to_numpy()[1:] == pytest.approx(travel, abs=1e-6)
    assert ((plume["horizontal_angle"] > 180.0) & (plume["horizontal_angle"] < 360.0)).all()
