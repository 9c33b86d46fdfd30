"""Brooks far-field dilution after the UM3 near field (spec §10), with the project's fixes (§13 item 10).

Fixes against the reference port: the far-field ambient is the profile evaluated once, in SI, at the
surface (no second unit conversion, no second-layer slip); the plume moves with the far-field current
and distances are measured from the source (§13 items 10, 12); decay acts on the excess over background
on every step. Everything else follows §10.3 and §10.4 as written, as the original program computes:
an output row at an interpolated distance reports the previous step's pollutant (decayed over the
partial step) and, with the background estimate, adds dm·c_b·B/2.2 there only, B = 24·e^(−kΔt).
"""
from __future__ import annotations

import math

from .ambient import AmbientColumn, AmbientState
from .types import MAX_FF_ROWS, MAX_FF_STEPS, EngineCase, FarFieldOutput, FinalState

MAX_FF_STEP_S = 3.15576e9       # one far-field step may span at most a century
BACKGROUND_MEMORY = 24          # spec §10.4: slots of the decay memory
BACKGROUND_SHARE = 2.2          # spec §10.3: the estimate adds dm·c_b·B/2.2
COS_70 = math.cos(70.0 * math.pi / 180.0)


def _horizontal_angle(ax: float, ay: float, bx: float, by: float) -> float:
    na, nb = math.hypot(ax, ay), math.hypot(bx, by)
    if na == 0.0 or nb == 0.0:
        return math.pi / 2.0
    c = (ax / na) * (bx / nb) + (ay / na) * (by / nb)      # normalised first: na·nb may underflow
    return math.acos(max(-1.0, min(1.0, c)))


class _DilutionLaw:
    """S(τ) = S0 / erf(√X(τ)) and the width W(τ) of spec §10.2."""

    def __init__(self, power_4_3: bool, alpha: float, width: float, start_dilution: float) -> None:
        self.power_4_3 = power_4_3
        self.alpha = alpha
        self.width = width
        self.start_dilution = start_dilution
        self.w23 = width ** (2.0 / 3.0)

    def argument(self, tau: float) -> float:
        if self.power_4_3:
            growth = (1.0 + 8.0 * self.alpha * tau / self.w23) ** 3 - 1.0
            return 1.5 / growth if growth > 0.0 else math.inf
        a = 8.0 * self.alpha * self.width ** (4.0 / 3.0) * tau
        return self.width ** 2 / (2.0 * a) if a > 0.0 else math.inf

    def dilution(self, x: float) -> float:
        e = math.erf(math.copysign(math.sqrt(abs(x)), x))
        return self.start_dilution / e if e > 0.0 else math.inf

    def width_at(self, tau: float) -> float:
        return self.width * (1.0 + 8.0 * self.alpha * tau / self.w23) ** 1.5


def run_farfield(case: EngineCase, final: FinalState, column: AmbientColumn | None = None) -> FarFieldOutput:
    """Brooks far field from the UM3 end state `final` (spec §10)."""
    st, dif = case.settings, case.diffuser
    out = FarFieldOutput(was_run=True)
    memos = out.memos
    if final.reached_mixing_zone:
        memos.append("Mixing Zone reached in near-field, no far-field prediction.")
        return out
    if final.isopleth_factor <= 0.0:
        memos.append("Isopleth closed in near-field, no far-field prediction.")
        return out
    if column is None:
        column = AmbientColumn(case.ambient, vector_averaging=st.current_vector_averaging,
                               at_equilibrium=st.at_equilibrium, bacteria_model=st.bacteria_model,
                               light_absorb_coeff=st.light_absorb_coeff)
    surface = column.evaluate_surface(AmbientState())
    speed = surface.ff_velocity
    if final.ambient["ff_velocity"] == 0.0 or speed <= 0.0:
        memos.append("No farfield prediction when far vel = 0.")
        return out
    end_distance = dif.acute_mixing_zone
    if end_distance <= 0.0:
        memos.append("No mixing-zone distance: the far field needs one to run to.")
        return out

    src_x, src_y = dif.offset_x, dif.offset_y
    x, y = final.x, final.y
    r0 = math.hypot(x - src_x, y - src_y)
    n_ports = dif.num_ports
    width = final.diameter
    if n_ports > 1:
        v0x, v0y, _ = final.initial_velocity
        psi = _horizontal_angle(v0x, v0y, final.ambient["ux"], final.ambient["uy"])
        width += (n_ports - 1) * dif.port_spacing * max(abs(math.cos(psi)), COS_70)
        if final.diameter < dif.port_spacing:
            memos.append("Plumes not merged, Brooks method may be overly conservative.")
    power = st.farfield_diffusivity == "POWER_4_3"
    memos.append(("4/3 Power Law." if power else "Const Eddy Diffusivity.")
                 + f" Farfield dispersion based on wastefield width of {width:.1f} m")

    alpha = surface.ff_diff_coeff
    background, decay = surface.bg_conc, surface.decay_rate
    direction = surface.ff_dir * (math.pi / 180.0)
    ux, uy = speed * math.cos(direction), speed * math.sin(direction)
    law = _DilutionLaw(power, alpha, width, final.dilution)

    increment = st.ff_increment
    next_mark = increment
    if increment > 0.0 and r0 > next_mark:      # spec §10.1: the first increment beyond r0
        next_mark = increment * math.ceil(r0 / increment)
    next_mark = min(next_mark, end_distance)
    dt = next_mark / speed if next_mark > 0.0 else 360.0
    if not dt <= MAX_FF_STEP_S:
        memos.append(f"Far-field current of {speed:.3g} m/s is too slow to reach {next_mark:.0f} m within "
                     f"{MAX_FF_STEP_S / 3.15576e7:.0f} years; no far-field prediction.")
        return out
    if not math.isfinite(law.argument(1.0 + dt)):
        # no spreading (α = 0, or so small that 8·α·τ underflows): the dilution law of §10.2 has no
        # finite argument
        memos.append(f"No farfield prediction when the far-field diffusion coefficient is {alpha:.3g}.")
        return out
    # spec §10.4: the decay memory B = 24·e^(−kΔt), added to the interpolated rows only (§10.3)
    memory = BACKGROUND_MEMORY * math.exp(-decay * dt) if st.estimate_ff_background else 0.0
    mass0 = final.initial_mass

    cols = out.columns
    room = MAX_FF_ROWS - 1                      # rows before the final one

    def full() -> bool:
        """True once the row limit is reached (with a memo, once)."""
        if len(out.steps) < room:
            return False
        if not out.memos[-1].startswith("Far-field output limited"):
            memos.append(f"Far-field output limited to {MAX_FF_ROWS} rows: the far-field increment of "
                         f"{increment:g} m asks for more; later rows are left out, the final row is kept.")
        return True

    def write(step: int, tau: float, distance: float, dilution: float, conc: float, px: float, py: float,
              arg: float) -> None:
        out.steps.append(step)
        cols["distance"].append(distance)
        cols["time"].append(tau)
        cols["dilution"].append(dilution)
        cols["concentration"].append(conc)
        cols["width"].append(law.width_at(tau))
        cols["x"].append(px)
        cols["y"].append(py)
        cols["ff_velocity"].append(speed)
        cols["ff_dir"].append(surface.ff_dir)
        cols["background"].append(background)
        cols["decay_rate"].append(decay)
        cols["ff_diff_coeff"].append(alpha)
        cols["diffusivity_argument"].append(arg)

    tau = 1.0
    dilution = final.dilution
    mass, pollutant = final.mass, final.pollutant_mass
    conc = final.concentration
    r = r0
    write(0, tau, r0, dilution, conc, x, y, 0.0)
    step = 0
    iso_stop = dif.isopleth_type == "concentration" and dif.isopleth >= 0.0
    while step < MAX_FF_STEPS:
        if r >= end_distance or (iso_stop and conc < dif.isopleth):
            break
        step += 1
        tau += dt
        arg = law.argument(tau)
        prev_dilution, prev_mass, prev_pollutant = dilution, mass, pollutant
        dilution = law.dilution(arg)
        dm = (dilution - prev_dilution) * mass0
        mass = prev_mass + dm
        # first-order decay of the excess over background (as in the near field, spec §7.4 item 15)
        pollutant = prev_mass * background + (prev_pollutant - prev_mass * background) * math.exp(-decay * dt) \
            + dm * background
        conc = pollutant / mass
        prev_x, prev_y, r_prev = x, y, r
        x += ux * dt
        y += uy * dt
        r = math.hypot(x - src_x, y - src_y)
        # spec §10.3: rows at the output distances crossed in this step, interpolated linearly in distance
        estimate = dm * background / BACKGROUND_SHARE * memory
        while increment > 0.0 and r > next_mark >= r_prev:
            if full():
                next_mark = increment * (math.floor(r / increment) + 1.0)     # skip the marks of this step
                break
            frac = (next_mark - r_prev) / (r - r_prev)
            tau_mark = tau - dt + frac * dt
            conc_mark = (prev_pollutant + estimate) * math.exp(-decay * frac * dt) / prev_mass
            write(step, tau_mark, next_mark, law.dilution(law.argument(tau_mark)), conc_mark,
                  prev_x + frac * (x - prev_x), prev_y + frac * (y - prev_y), arg)
            next_mark += increment
        if st.output_all_ff_increments and not full():
            write(step, tau, r, dilution, conc, x, y, arg)
    if step > 0:   # spec §10.3: the final row is always written
        write(step, tau, r, dilution, conc, x, y, law.argument(tau))
    return out
