"""UM3 near-field plume model: initial conditions and the step loop (spec §6–§9).

`run_um3(EngineCase) -> CaseOutput`. Vectors are kept as plain float components (x, y, z) so the
step loop allocates as little as Python allows; the coordinate system is x east, y north, z up with
z = 0 at the surface (spec §0).
"""
from __future__ import annotations

import math

from .ambient import AmbientColumn, AmbientState
from .seawater import density, density_pst, density_st
from .types import MAX_STEPS, MISSING, CaseOutput, EngineCase, FinalState

G = 9.807                          # spec §0; gravity vector (0, 0, −G)
PI = math.pi
DEG = math.pi / 180.0
COS_20 = math.cos(20.0 * DEG)
SIN_20 = math.sin(PI / 9.0)
HUGE_RADIUS = 1e15                 # spec §6.3: curvature radius of a straight element

# spec §8.1: profile constants (poly, single)
PROFILE_CONSTANTS = {"DEFAULT": (1.5, 2.0), "POWER_3_2": (2.222, 3.89), "GAUSSIAN": (2.1466, 3.67)}
# spec §6.2: (trap limit, reversal limit) per max_reversals setting
STOP_LIMITS = {"INITIAL_TRAP_LEVEL": (1, 5), "SECOND_TRAP_LEVEL": (2, 5),
               "MAX_RISE_OR_FALL": (5, 1), "SECOND_MAX_RISE_OR_FALL": (5, 2)}
# spec §7.7: the status texts of a written row, in this order (the compiled loop returns them as bits)
ROW_STATUS_TEXTS = ("trap level", "surface", "MZ dis", "bottom hit", "ceiling", "local maximum rise or fall",
                    "isopleth closed", "stream limit reached", "merging", "begin overlap", "max iterations",
                    "end overlap", "stop dilution reached")
# spec §7.6: why the loop stopped, in this order
STOP_TEXTS = ("max steps", "trap level", "local maximum rise or fall", "surface", "bottom", "stop dilution",
              "isopleth closed")
ISOPLETH_ABOVE_SOURCE = "isopleth above the effluent concentration"


def _norm(x: float, y: float, z: float) -> float:
    return math.sqrt(x * x + y * y + z * z)


def _hypot(x: float, y: float) -> float:
    """Length of (x, y). Not math.hypot: CPython computes that with its own algorithm, which the compiled
    loop cannot reproduce to the last bit; the plain formula gives both loops the same numbers."""
    return math.sqrt(x * x + y * y)


def _angle(ax: float, ay: float, az: float, bx: float, by: float, bz: float) -> float:
    """Angle between two vectors; π/2 if either is zero (spec §0)."""
    na, nb = _norm(ax, ay, az), _norm(bx, by, bz)
    if na == 0.0 or nb == 0.0:
        return PI / 2.0
    c = (ax / na) * (bx / nb) + (ay / na) * (by / nb) + (az / na) * (bz / nb)
    return math.acos(1.0 if c > 1.0 else (-1.0 if c < -1.0 else c))


def _rescale(k: float, x: float, y: float, z: float) -> tuple[float, float, float]:
    n = _norm(x, y, z)
    if n == 0.0:
        return 0.0, 0.0, 0.0
    f = k / n
    return x * f, y * f, z * f


def _cross(ax: float, ay: float, az: float, bx: float, by: float, bz: float) -> tuple[float, float, float]:
    return ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx


def format_memo_number(x: float) -> str:
    """Number format of the Visual Plumes memos (spec §9.2)."""
    a = abs(x)
    if a < 1e-10:
        return "0.0"
    if a < 0.01:
        return f"{x:.2e}"
    if a < 1:
        return f"{x:.3f}"
    if a < 10:
        return f"{x:.2f}"
    if a >= 1e5:
        return f"{x:.2e}"
    if a >= 1000:
        return f"{x:,.0f}"
    return f"{x:.1f}"


def start_memos(memos: list[str], froude: float, strat: float, n_ports: int, spacing: float, diameter: float,
                port_speed: float, amb_speed_shown: float, rho_eff: float, bottom: float,
                current_small: bool) -> None:
    """The step-0 memos (spec §9.2)."""
    memos.append("Froude No:    " + format_memo_number(froude) + " ")
    memos.append(f"Strat No:     {strat:.2e}")
    if n_ports > 1:
        memos.append("Spcg No:      " + format_memo_number(spacing / diameter))
    memos.append("k:            " + format_memo_number(port_speed / amb_speed_shown))
    memos.append("effluent den: " + format_memo_number(rho_eff - 1000.0) + " sigmaT")
    memos.append("effluent vel: " + format_memo_number(port_speed) + " m/s")
    memos.append("bottom depth: " + format_memo_number(bottom) + " m")
    if current_small:
        memos.append("Current is very small, flow regime may be transient.")
    if abs(froude) < 1.0:
        memos.append("Absolute value Froude No. < 1, the port may be intruded by ambient water.")


def finish_output(out: CaseOutput, column: AmbientColumn, amb: AmbientState, ambient_exceeds: bool,
                  bottom_contact_step: int, axis: tuple[float, float, float], source: tuple[float, float],
                  final: dict) -> None:
    """After the loop (spec §7.5 / §9.2): memos, post-memos and the final state. `amb` is the ambient
    at the lagged final depth, `axis` the diffuser axis, `final` the FinalState fields but the ambient."""
    memos = out.memos
    if ambient_exceeds:
        memos.append("Ambient species greater than plume isopleth value, physical boundary graphed")
    if 0 <= bottom_contact_step < 3:
        memos.append("Bottom geometry consistent? The plume touched the bottom before step 3.")
    post = out.postmemos
    closed_final = bool(out.statuses) and "isopleth closed" in out.statuses[-1]
    if closed_final:
        post.append("Isopleth closed. Extend simulation by reducing the isopleth value.")
        post.append("")
    ex, ey, ez = _rescale(1.0, *_cross(*axis, 0.0, 0.0, -G))
    gx, gy, gz = _rescale(final["diameter"] / 2.0, *_cross(0.0, 0.0, -G, final["vx"], final["vy"], final["vz"]))
    radius = abs(gx * ex + gy * ey + gz * ez)
    centre = abs((final["x"] - source[0]) * ex + (final["y"] - source[1]) * ey + final["z"] * ez)
    k_final = amb.decay_rate
    post.append("Horiz plane projections in effluent direction: radius(m): " + format_memo_number(radius)
                + ";\nCL(m):      " + format_memo_number(centre)
                + "\nLmz(m):     " + format_memo_number(radius + centre)
                + "\nRate sec-1: " + format_memo_number(k_final) + " s-1  /  "
                + format_memo_number(k_final * 86400.0) + " d-1  /  " + format_memo_number(k_final) + " kt")
    column.evaluate(amb.depth, amb)               # the far-field variables too, at the lagged final depth
    final_ambient = amb.as_dict()
    if final_ambient["current_speed"] == 0.0:
        final_ambient["current_speed"] = 0.001     # spec §7.5 (matters for tidal buildup)
    out.final = FinalState(ambient=final_ambient, **final)


class _Isopleth:
    """Isopleth factor ι and centre-line dilution (spec §8.1)."""

    def __init__(self, case: EngineCase, initial_diameter: float) -> None:
        dif, st = case.diffuser, case.settings
        self.kind = dif.isopleth_type
        self.value = dif.isopleth
        self.profile = st.similarity_profile
        self.poly, self.single = PROFILE_CONSTANTS[st.similarity_profile]
        self.num_ports = dif.num_ports
        self.spacing = dif.port_spacing
        self.channel_width = st.tpb_channel_width
        self.initial_diameter = initial_diameter
        self.source = {"concentration": dif.concentration, "salinity": dif.salinity,
                       "temperature": dif.temperature,
                       "speed": dif.effluent_flow / (PI * initial_diameter ** 2 / 4.0)}[self.kind]
        self.cl_dilution_max = 1.0
        self.ambient_exceeds = False

    def ambient_value(self, amb: AmbientState) -> float:
        if self.kind == "concentration":
            return amb.bg_conc
        if self.kind == "salinity":
            return amb.salinity
        if self.kind == "temperature":
            return amb.temperature
        return amb.current_speed

    def factor(self, dilution: float, diameter: float, merged: bool, amb: AmbientState,
               stream_limited: bool, frozen_concentration: float) -> tuple[float, float, bool]:
        """Return (ι, centre-line dilution, close) for the current element."""
        s = self.spacing
        if merged and self.num_ports > 1:
            kp = self.poly if diameter > 2.0 * s else self.single - (self.single - self.poly) * (diameter - s) / s
        else:
            kp = self.single
        cl = dilution / kp if kp != 0.0 else dilution
        if cl > self.cl_dilution_max:
            self.cl_dilution_max = cl
        c_amb = self.ambient_value(amb)
        iso = self.value
        if iso <= c_amb:
            self.ambient_exceeds = True
        if stream_limited and amb.current_speed != 0.0:
            c_cl = c_amb + 1.5 * (frozen_concentration - c_amb)
            if c_cl == c_amb:
                iota = 0.0
            else:
                arg = 1.0 - (iso - c_amb) / (c_cl - c_amb)
                iota = math.sqrt(arg) if arg > 0.0 else 0.0
            if diameter > 0.0:
                iota = min(iota, self.channel_width / diameter)
        elif kp == 0.0 or self.source == c_amb:
            iota = 0.0
        else:
            x = dilution / kp * (iso - c_amb) / (self.source - c_amb)
            if x > 1.0:
                iota = 0.0
            elif x <= 0.0:
                # ambient at or above the isopleth value: no isopleth boundary inside the plume,
                # the physical boundary is used (spec §8.1 cap; §13 items 6 and 20 fixed)
                iota = 1.0
            elif self.profile == "POWER_3_2":
                iota = (1.0 - math.sqrt(x)) ** (2.0 / 3.0)
            elif self.profile == "GAUSSIAN":
                iota = math.sqrt(-math.log(x)) / 1.888
            else:
                iota = math.sqrt(1.0 - x)
            if dilution < kp and diameter > 0.0:
                a = self.initial_diameter * (kp - dilution) / kp
                iota = (iota * (diameter - a) + a) / diameter
            if iota > 1.0:
                iota = 1.0
        close = False
        if self.kind == "concentration" and iso > self.source:
            iota, close = 0.0, True
        return iota, max(self.cl_dilution_max, 1.0), close


def run_um3(case: EngineCase) -> CaseOutput:
    """Run the UM3 near field for one case (spec §6–§9)."""
    st, dif, amb_in = case.settings, case.diffuser, case.ambient
    sqrt = math.sqrt
    out = CaseOutput()
    column = AmbientColumn(amb_in, vector_averaging=st.current_vector_averaging,
                           at_equilibrium=st.at_equilibrium, bacteria_model=st.bacteria_model,
                           light_absorb_coeff=st.light_absorb_coeff)
    eq = st.at_equilibrium
    buildup = case.buildup

    # ---- spec §6.1 port geometry and initial element
    n_ports = int(dif.num_ports)
    spacing = dif.port_spacing if n_ports > 1 else MISSING
    port_depth = dif.depth
    bottom = amb_in.bottom_depth
    flow = dif.effluent_flow
    diameter = dif.diameter * math.sqrt(st.contraction_coeff)
    initial_diameter = diameter
    b0 = diameter / 2.0
    port_speed = flow / (n_ports * PI * b0 * b0)
    h_rad, v_rad = dif.horizontal_angle * DEG, dif.vertical_angle * DEG
    vx = port_speed * math.cos(h_rad) * math.cos(v_rad)
    vy = port_speed * math.sin(h_rad) * math.cos(v_rad)
    vz = port_speed * math.sin(v_rad)
    v0x, v0y, v0z = vx, vy, vz

    amb = column.evaluate(port_depth, AmbientState())
    rho_eff = density(dif.salinity, dif.temperature, port_depth, eq)     # ρ0
    rho = rho_eff
    drho = amb.density - rho_eff
    height = 0.1 * dif.diameter                    # spec §6.1: uncontracted port diameter
    mass0 = rho_eff * PI * b0 * b0 * height
    mass = mass0
    sal, temp = dif.salinity, dif.temperature
    src_x, src_y = dif.offset_x, dif.offset_y
    rx, ry, rz = src_x, src_y, -port_depth
    drx = dry = drz = 0.0
    conc0 = dif.concentration
    pollutant = conc0 * mass0
    pollutant0 = pollutant
    conc = conc0
    sep = spacing - diameter
    dt = 0.003
    dilution = 0.0
    total_time = 0.0
    path_length = 0.0
    dmass = 0.0
    amb_speed_shown = amb.current_speed if amb.current_speed > 0.0 else 1e-5

    # ---- spec §6.2 case constants
    speeds = amb_in.profiles["current_speed"].values
    mean_speed = (speeds[-1] + speeds[-2]) / 2.0 if len(speeds) > 1 else speeds[0]
    deepest = amb_in.profiles["current_speed"].depths[-1]
    stream_flow = st.tpb_channel_width * mean_speed * max(port_depth, deepest)
    trap_limit, reversal_limit = STOP_LIMITS[st.max_reversals]
    mz_distance = dif.acute_mixing_zone

    # ---- spec §6.3 initial curvature vector: the project always takes the δ = 0 branch (§13 item 1)
    cx, cy, cz = _cross(vx, vy, vz, 0.0, 0.0, -G)
    rcx, rcy, rcz = _rescale(HUGE_RADIUS, *_rescale(diameter, cx, cy, cz))
    bx, by, bz = _rescale(b0, rcx, rcy, rcz)                     # B0
    ax_, ay_, az_ = _rescale(b0, *_cross(rcx, rcy, rcz, vx, vy, vz))  # A

    # ---- spec §9.2 step-0 memos
    memos = out.memos
    sign = (drho > 0.0) - (drho < 0.0)
    if drho == 0.0:
        froude = 9.999e15
    else:
        froude = sign * port_speed / math.sqrt(G * diameter * abs(drho) / rho_eff)
    surface_density = density(amb_in.profiles["salinity"].values[0], amb_in.profiles["temperature"].values[0],
                              amb_in.profiles["salinity"].depths[0], eq)
    strat = (amb.density - surface_density) * diameter / port_depth / drho if drho != 0.0 else 0.0
    current_small = _hypot(amb.ux, amb.uy) < 1e-5
    start_memos(memos, froude, strat, n_ports, spacing, diameter, port_speed, amb_speed_shown, rho_eff, bottom,
                current_small)

    # ---- spec §6.5 loop set-up: trajectory-plane normal and diffuser axis
    ang_gv = _angle(0.0, 0.0, -G, vx, vy, vz)
    if abs(ang_gv) < 1e-10 or abs(ang_gv - PI) < 1e-10:
        if current_small:
            nvx, nvy, nvz = 0.0, 1.0, 0.0
            memos.append("Vertical discharge in still water, projection plane set to the y-z plane")
        else:
            nvx, nvy, nvz = _rescale(1.0, *_cross(0.0, 0.0, -G, amb.ux, amb.uy, 0.0))
            memos.append("Vertical discharge, projection plane defined by current")
    else:
        nvx, nvy, nvz = _rescale(1.0, *_cross(vx, vy, vz, 0.0, 0.0, -G))
    alx, aly, alz = nvx, nvy, nvz                   # v_align, the diffuser axis
    aox, aoy, aoz = _rescale(mz_distance, v0x, v0y, v0z)   # A_o
    ao_len = sqrt(aox * aox + aoy * aoy + aoz * aoz)

    iso = _Isopleth(case, initial_diameter)
    a2 = a3 = a4 = a5 = 1.0
    phi = 0.0
    v_ave = 0.0
    merge_limit = 0.0
    b = b_prev = sqrt(bx * bx + by * by + bz * bz)
    hist_old_z = hist_new_z = rz
    hist_old_d = hist_new_d = diameter
    reversals = traps = 0
    lap = lap_old = False
    lapstep = 0
    reversal_flag = False
    has_merged = has_surfaced = bottomed = reached_ceiling = stream_limited = False
    atvmxz = False
    frozen_conc = 0.0
    energy_prev = 0.0
    changes: set[str] = set()
    vpx, vpy, vpz = vx, vy, vz          # V_prev: velocity at the start of the previous step
    drho_prev = drho
    ceiling = st.tpb_mixing_zone_ceil
    bottom_contact_step = -1
    speed = port_speed
    s_half = MISSING

    cols = out.columns

    def net_dilution() -> float:     # spec §8.2, effective dilution fixed (§13 item 8)
        if st.report_effective_dillution and amb.bg_conc != 0.0:
            return conc0 / conc if conc > 0.0 else 0.0
        return dilution

    def write_row(step: int, status: str, iota: float, cl_dil: float, net: float) -> None:
        vhx, vhy = vx, vy
        vert = _angle(vhx, vhy, 0.0, vx, vy, vz) / DEG
        if vz < 0.0:
            vert = -vert
        horiz = math.atan2(vy, vx) / DEG % 360.0 if (vx != 0.0 or vy != 0.0) else 0.0   # §13 item 9 fixed
        out.steps.append(step)
        out.statuses.append(status)
        cols["depth"].append(-rz)
        cols["diameter"].append(diameter)
        cols["ambient_current_speed"].append(amb_speed_shown)
        cols["velocity"].append(speed)
        cols["x"].append(rx)
        cols["y"].append(ry)
        cols["density"].append(rho)
        cols["concentration"].append(conc)
        cols["dilution"].append(dilution)
        cols["vertical_angle"].append(vert)
        cols["horizontal_angle"].append(horiz)
        cols["time"].append(total_time)
        cols["cl_dilution"].append(cl_dil)
        cols["net_dilution"].append(net)
        cols["salinity"].append(sal)
        cols["temperature"].append(temp)
        cols["height"].append(height)
        cols["mass"].append(mass)
        cols["entrained_mass"].append(dmass)
        cols["horizontal_distance"].append(_hypot(rx, ry))               # spec §9.1: from the origin
        cols["source_distance"].append(_hypot(rx - src_x, ry - src_y))
        cols["path_length"].append(path_length)
        cols["iso_diameter"].append(iota * diameter)
        cols["isopleth_factor"].append(iota)
        cols["density_difference"].append(drho)            # spec §7.4 item 2: the step's Δρ
        cols["pollutant_mass"].append(pollutant)
        cols["ambient_density"].append(amb.density)
        cols["ambient_salinity"].append(amb.salinity)
        cols["ambient_temperature"].append(amb.temperature)
        cols["ambient_bg_conc"].append(amb.bg_conc)
        cols["ambient_decay_rate"].append(amb.decay_rate)
        cols["ambient_current_dir"].append(amb.current_dir)
        cols["buildup"].append(buildup)

    # ---- spec §6.4 step 0: the status flags marked * in §7.6, from the boundary points R ± B0
    iota, cl_dil, close = iso.factor(0.0, diameter, False, amb, False, 0.0)
    net0 = net_dilution()
    dilution = 1.0
    parts0 = []
    if rz + bz > 0.0 or rz - bz > 0.0:
        has_surfaced = True
        parts0.append("surface")
    if rz + bz < -bottom or rz - bz < -bottom:
        bottomed = True
        bottom_contact_step = 0
        parts0.append("bottom hit")
    if ceiling > 0.0 and (-(rz + bz) < ceiling or -(rz - bz) < ceiling):
        reached_ceiling = True
        parts0.append("ceiling")
    write_row(0, ", ".join(parts0), iota, cl_dil, net0)
    done = close
    if close:
        out.stop_reason = ISOPLETH_ABOVE_SOURCE
        memos.append("Isopleth value above the effluent concentration: no plume inside the isopleth, run stopped.")
    n = 0

    step_length = 0.0
    delta = 0.0
    induced_current, aspiration = st.allow_induced_current, st.aspiration_coeff
    write_freq, wsf = st.write_step_freq, round(st.write_step_freq)
    stop_on_surface, stop_on_bottom, max_dilution = not st.dont_stop_on_surface_hit, st.stop_on_bottom_hit, st.max_dilution
    while not done and not atvmxz:
        n += 1
        # ---- spec §7.1 entrainment, from the end-of-previous-step values
        disp = step_length if n > 1 else speed * dt
        db = b - b_prev
        # turning during the previous step: angle(V_prev, V), the body geometry's δ of that step
        turning = delta if n > 1 else _angle(vpx, vpy, vpz, vx, vy, vz)
        vmag = sqrt(vx * vx + vy * vy + vz * vz)
        # angle(G, V) != 0, i.e. unit(G)·unit(V) < 1 with unit(G) = (0, 0, −1) exactly
        if vmag == 0.0 or -(vz / vmag) < 1.0:
            # rescale(1, V × G), G = (0, 0, −G), the cross product written out term by term
            nvx, nvy, nvz = vy * -G - vz * 0.0, vz * 0.0 - vx * -G, vx * 0.0 - vy * 0.0
            nv_len = sqrt(nvx * nvx + nvy * nvy + nvz * nvz)
            if nv_len == 0.0:
                nvx = nvy = nvz = 0.0
            else:
                f = 1.0 / nv_len
                nvx, nvy, nvz = nvx * f, nvy * f, nvz * f
        uax, uay = amb.ux, amb.uy
        # U_par = perp(U_a, N_v): the current in the trajectory plane; U_perp the cross-flow
        nv_len = sqrt(nvx * nvx + nvy * nvy + nvz * nvz)
        if nv_len == 0.0:
            upx, upy, upz = uax, uay, 0.0
        else:
            ex, ey, ez = nvx / nv_len, nvy / nv_len, nvz / nv_len
            k_ = uax * ex + uay * ey
            upx, upy, upz = uax - k_ * ex, uay - k_ * ey, -k_ * ez
        uqx, uqy, uqz = uax - upx, uay - upy, -upz
        u_par = sqrt(upx * upx + upy * upy + upz * upz)
        u_perp = sqrt(uqx * uqx + uqy * uqy + uqz * uqz)
        if vmag == 0.0:
            vmag = 1e-12
        sin_t = vz / vmag
        cos_t = _hypot(vx, vy) / vmag
        if induced_current and n_ports > 1:
            v_ind = v_ave * (diameter / spacing if diameter > spacing else 1.0)
        else:
            v_ind = 0.0
        if n_ports <= 1:
            s_half = MISSING
        else:
            vh_len = _hypot(vx, vy)
            al_len = sqrt(alx * alx + aly * aly + alz * alz)
            c_al = (alx * vx + aly * vy) / (al_len * vh_len) if vh_len != 0.0 and al_len != 0.0 else 0.0
            if abs(c_al) < COS_20:
                s_half = abs(0.5 * spacing * math.sin(_angle(alx, aly, alz, vx, vy, 0.0)))
            else:
                s_half = 0.5 * spacing * SIN_20
            if merge_limit != 0.0 and s_half > merge_limit / 2.0:
                s_half = merge_limit / 2.0
        if b >= s_half:   # spec §7.1 overlap geometry
            phi = math.atan(math.sqrt(abs((b * b - s_half * s_half) / s_half)))
            a2 = 1.0 - 2.0 * phi / PI
            a3 = s_half / b
            a4 = a2 + math.sin(2.0 * phi) / PI
            a5 = 1.0 / n_ports
        k_ent = amb.density * dt * b * height
        cyl = 2.0 * k_ent * abs(sin_t) * a3 * (u_par + v_ind)
        cyln = 2.0 * k_ent * a5 * u_perp
        if disp != 0.0:
            dot_uv = upx * vx + upy * vy + upz * vz
            rgro = abs(PI / disp * cos_t * db * a2 * u_par * k_ent) if (dot_uv > 0.0) == (db > 0.0) else 0.0
            rc_len = sqrt(rcx * rcx + rcy * rcy + rcz * rcz)
            v_dot_rc = (vx * rcx + vy * rcy + vz * rcz) / rc_len if rc_len != 0.0 else 0.0
            curv = (PI / 2.0) * b * b * turning / disp * height * amb.density * a4 \
                * (v_dot_rc + v_ind)
            if upx * rcx + upy * rcy + upz * rcz < 0.0:
                curv = -curv
        else:
            rgro = curv = 0.0
        if (hist_old_z < rz < hist_new_z or hist_new_z < rz < hist_old_z) and diameter > 0.0:
            # spec §7.1 upstream-diameter correction (effectively dead code, kept, §13 item 16)
            d_up = hist_old_d + (rz - hist_old_z) * (hist_new_d - hist_old_d) / (hist_new_z - hist_old_z)
            d_up = min(max(d_up, 0.0), diameter)
            cyl *= 1.0 - d_up / diameter
            curv *= 1.0 - d_up / diameter
        e1 = rgro + cyln + (cyl + curv if cyl + curv > 0.0 else 0.0)
        u_w = abs(u_par * sin_t)
        vhat_x, vhat_y, vhat_z = vx / vmag, vy / vmag, vz / vmag
        v_e = aspiration * abs(vmag - (upx * vhat_x + upy * vhat_y + upz * vhat_z))
        if u_w > v_e:   # v_e = 0 (jet moving with the current) is the limit β = π/2
            beta = math.atan(math.sqrt(u_w / v_e - 1.0)) if v_e > 0.0 else PI / 2.0
        else:
            beta = 0.0
        v_ave = v_e - beta * v_e / PI - u_w * (1.0 - math.sin(beta)) / PI
        e2 = 2.0 * k_ent * PI * abs(v_ave) * a2
        dm = e1 + e2
        start_depth = -rz

        # ---- spec §7.2 adaptive time step
        if n > 1:
            gamma = max(dm / (0.02 * mass), turning / 0.005)
            if gamma > 0.0:
                dt /= gamma
                dm /= gamma
        # ---- spec §7.3 overlap reduction
        rc_len = sqrt(rcx * rcx + rcy * rcy + rcz * rcz)
        if rc_len < diameter:
            dm *= rc_len / diameter
            lap = True
            lapstep = n
        elif n > lapstep + 1:
            lap = False

        # ---- spec §7.4 mixing, buoyancy, motion
        vpx, vpy, vpz = vx, vy, vz
        drx_prev, dry_prev, drz_prev = drx, dry, drz
        drho_prev = drho
        b_prev = b
        sep_prev = sep
        total = mass + dm
        sal = (mass * sal + dm * amb.salinity) / total
        temp = (mass * temp + dm * amb.temperature) / total
        rho = density_st(sal, temp) if eq else density_pst(sal, temp, start_depth)
        drho = amb.density - rho
        total_time += dt
        vx = (mass * vx + dm * uax) / total
        vy = (mass * vy + dm * uay) / total
        vz = mass * vz / total + drho / rho * G * dt
        drx, dry, drz = vx * dt, vy * dt, vz * dt
        step_length = sqrt(drx * drx + dry * dry + drz * drz)
        path_length += step_length
        rx += drx
        ry += dry
        rz += drz
        # spec §7.4 item 6, measured from the source; a zero distance means no mixing-zone stop (§13 item 12)
        hx, hy = rx - src_x, ry - src_y
        h_len = _hypot(hx, hy)
        if mz_distance > 0.0:
            if n_ports < 2:
                mz_limit = mz_distance
            else:
                c_mz = abs((aox * hx + aoy * hy) / (ao_len * h_len)) if h_len != 0.0 and ao_len != 0.0 else 0.0
                l_max = 0.5 * n_ports * spacing + ao_len
                mz_limit = l_max if c_mz < 1e-6 else min(ao_len / c_mz, l_max)
            hit_mz = h_len >= mz_limit
        else:
            hit_mz = False
        mass = total
        b = math.sqrt(mass / (rho * PI * height))
        sep = s_half - b
        merging = sep * sep_prev < 0.0 or (n_ports > 1 and 0.0 < merge_limit < diameter)
        if b > s_half:
            b *= math.sqrt(PI / (PI - 2.0 * phi + 2.0 * math.cos(phi) * math.sin(phi)))
        speed_prev = sqrt(vpx * vpx + vpy * vpy + vpz * vpz)
        speed = sqrt(vx * vx + vy * vy + vz * vz)
        if speed != 0.0 and speed_prev != 0.0:
            height *= speed / speed_prev
        dilution = mass * rho_eff / (rho * mass0)
        pollutant = pollutant - amb.decay_rate * (pollutant - mass * amb.bg_conc) * dt \
            + dm * amb.bg_conc + dm * buildup
        conc = pollutant / mass * (rho / rho_eff)
        dmass = dm
        diameter = 2.0 * b
        hist_old_z, hist_old_d = hist_new_z, hist_new_d
        hist_new_z, hist_new_d = rz, diameter
        column.evaluate_near(start_depth, amb)   # spec §7.4 item 18: the one-step ambient lag (§5.4)
        amb_speed_shown = amb.current_speed

        # spec §7.4 item 10, evaluated at the current step as the original program does (§13); the
        # boundary points below still use the factor of the previous step, with the current diameter:
        # that pairing reproduces the original program's bottom-hit step in all 49 TRwtp cases
        # (reference/plumes20/COMPARISON.md, "What explains the differences" item 2)
        boundary_iota = iota
        iota, cl_dil, close = iso.factor(dilution, diameter, has_merged, amb, stream_limited, frozen_conc)

        # spec §7.4 item 11 body geometry, from the current diameter (§13: follow the original program)
        r = diameter / 2.0
        # δ = angle(V, V_prev) (spec §0), from the speeds just computed (the same norms)
        if speed == 0.0 or speed_prev == 0.0:
            delta = PI / 2.0
        else:
            c_d = (vx / speed) * (vpx / speed_prev) + (vy / speed) * (vpy / speed_prev) \
                + (vz / speed) * (vpz / speed_prev)
            delta = math.acos(1.0 if c_d > 1.0 else (-1.0 if c_d < -1.0 else c_d))
        if delta != 0.0:
            cx, cy, cz = vy * vpz - vz * vpy, vz * vpx - vx * vpz, vx * vpy - vy * vpx    # V × V_prev
            rcx, rcy, rcz = vy * cz - vz * cy, vz * cx - vx * cz, vx * cy - vy * cx        # V × (V × V_prev)
            rc_len = sqrt(rcx * rcx + rcy * rcy + rcz * rcz)
            if rc_len == 0.0:
                rcx = rcy = rcz = 0.0
            else:
                f = step_length / delta / rc_len
                rcx, rcy, rcz = rcx * f, rcy * f, rcz * f
        else:
            rcx, rcy, rcz = _rescale(HUGE_RADIUS, *_cross(vx, vy, vz, ax_, ay_, az_))
        # angle(V, G) is exactly 0 or π iff unit(V)·(0, 0, −1) reaches ±1 (unit(G) is exact)
        c_vg = -(vz / speed) if speed != 0.0 else 0.0
        if c_vg >= 1.0 or c_vg <= -1.0:
            ax_, ay_, az_ = r, 0.0, 0.0
        else:
            # rescale(r, G × V) with G = (0, 0, −G): G × V = (G·vy, −G·vx, 0) written as the cross product
            gx, gy = 0.0 * vz - -G * vy, -G * vx - 0.0 * vz
            g_len = sqrt(gx * gx + gy * gy + (0.0 * vy - 0.0 * vx) ** 2)
            if g_len == 0.0:
                ax_, ay_, az_ = 0.0, 0.0, 0.0
            else:
                f = r / g_len
                ax_, ay_, az_ = gx * f, gy * f, (0.0 * vy - 0.0 * vx) * f
        # B0 = rescale(r, A × V); only its vertical component enters the boundary points
        abx, aby, abz = ay_ * vz - az_ * vy, az_ * vx - ax_ * vz, ax_ * vy - ay_ * vx
        ab_len = sqrt(abx * abx + aby * aby + abz * abz)
        bz = abz * (r / ab_len) if ab_len != 0.0 else 0.0
        top_z = rz + boundary_iota * bz
        low_z = rz - boundary_iota * bz
        bottom_contact = top_z < -bottom or low_z < -bottom
        if bottom_contact and bottom_contact_step < 0:
            bottom_contact_step = n
        surfacing = top_z > 0.0 or low_z > 0.0
        net = net_dilution()
        depth_now = -rz
        if depth_now == 0.0:
            energy = 1e9
        else:
            energy = G * (amb.density - rho) / amb.density * depth_now \
                + 0.5 * (0.5 * diameter * speed / depth_now) ** 2 - speed * speed
        energy_product = energy * energy_prev
        energy_prev = energy

        # ---- spec §7.6 status update and stop criteria
        reversal_now = vpz * vz < 0.0
        if reversal_now:
            reversal_flag = True
            reversals += 1
            hist_old_z, hist_old_d = hist_new_z, hist_new_d
            hist_new_z, hist_new_d = rz, diameter / 2.0
        elif reversal_flag:
            reversal_flag = False
        trap_now = drho_prev * drho < 0.0
        if trap_now:
            traps += 1
        max_iter = n > MAX_STEPS
        closed = iota <= 0.0
        if (max_iter or closed or traps >= trap_limit or reversals >= reversal_limit
                or (surfacing and stop_on_surface) or (bottomed and stop_on_bottom) or dilution > max_dilution):
            done = True
            out.stop_reason = ", ".join(text for text, hit in zip(STOP_TEXTS, (
                max_iter, traps >= trap_limit, reversals >= reversal_limit, surfacing and stop_on_surface,
                bottomed and stop_on_bottom, dilution > max_dilution, closed)) if hit)
        if ceiling > 0.0 and not reached_ceiling and (-top_z < ceiling or -low_z < ceiling):
            reached_ceiling = True
            changes.add("ceiling")
        if surfacing and not has_surfaced:
            has_surfaced = True
            changes.add("surface")
        if bottom_contact and not bottomed:
            bottomed = True
            changes.add("bottom")
        if hit_mz:
            atvmxz = True
            if not done:
                out.stop_reason = "mixing zone"
        if merge_limit == 0.0 and diameter > 2.0 * port_depth:
            merge_limit = port_depth
            merging = True
        if (not stream_limited and _hypot(amb.ux, amb.uy) > 1e-5
                and dilution > (stream_flow + flow) / flow):
            stream_limited = True
            changes.add("stream")
            if merge_limit == 0.0:
                merge_limit = port_depth
            frozen_conc = pollutant / mass
        if merging and not has_merged:
            has_merged = True
            changes.add("merged")
        matched = energy_product < 0.0 and diameter > depth_now

        # ---- spec §7.7 row writing
        write = (diameter == 0.0 or drho == 0.0 or drho_prev == 0.0 or done or max_iter
                 or drz * drz_prev < 0.0 or (n >= write_freq and n % wsf == 0)
                 or "merged" in changes or trap_now or reversal_flag
                 or drz == 0.0 or (drz_prev == 0.0 and (reversals == reversal_limit or traps == trap_limit))
                 or "surface" in changes or "bottom" in changes or lap != lap_old
                 or dilution > max_dilution or atvmxz or ("ceiling" in changes and ceiling > 0.0)
                 or matched)
        if write:
            # spec §7.7: status texts in this order
            parts = [text for text, hit in zip(ROW_STATUS_TEXTS, (
                trap_now, "surface" in changes, atvmxz, "bottom" in changes, "ceiling" in changes, reversal_flag,
                closed, "stream" in changes, "merged" in changes, lap and not lap_old, max_iter,
                lap_old and not lap, dilution > max_dilution)) if hit]
            if matched:
                parts.append("matched energy radial vel = "
                             + format_memo_number(0.25 * diameter * speed / depth_now) + " m/s")
            dilution = mass / mass0 * rho_eff / rho
            write_row(n, ", ".join(parts), iota, cl_dil, net)
            changes.clear()
        lap_old = lap

    # ---- spec §7.5 / §9.2 after the loop
    finish_output(out, column, amb, iso.ambient_exceeds, bottom_contact_step, (alx, aly, alz), (src_x, src_y), dict(
        x=rx, y=ry, z=rz, vx=vx, vy=vy, vz=vz, diameter=diameter, mass=mass, initial_mass=mass0,
        pollutant_mass=pollutant, initial_pollutant_mass=pollutant0, dilution=dilution,
        concentration=conc, density=rho, effluent_density=rho_eff, isopleth_factor=iota,
        total_time=total_time, reached_mixing_zone=atvmxz, initial_velocity=(v0x, v0y, v0z)))
    return out
