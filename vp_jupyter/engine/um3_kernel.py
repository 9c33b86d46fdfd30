"""The UM3 step loop compiled with Numba (spec §6–§7): the same steps, in the same order and with the same
variable names as `um3.run_um3`, on plain floats and arrays. Imports numba: load it through
`um3_compiled`, which falls back to the pure-Python loop when numba is missing.

The small pure functions it needs (equations of state, light decay, vector helpers) are compiled from
their one definition in `seawater`, `decay` and `um3`. Texts (statuses, stop reasons, memos) are left to
the caller: a written row carries its status as bits in the order of `um3.ROW_STATUS_TEXTS`.
"""
from __future__ import annotations

import math
import types

import numpy as np
from numba import njit
from numba.core import cgutils
from numba.extending import intrinsic

from . import decay, seawater, um3
from .types import PLUME_COLUMNS

_jit = njit(cache=True, nogil=True)
_inline = njit(cache=True, nogil=True, inline="always")


def _compile(function, **helpers):
    """`function` compiled from its one definition, with the helpers it calls replaced by compiled ones."""
    rebound = types.FunctionType(function.__code__, {**function.__globals__, **helpers}, function.__name__,
                                 function.__defaults__)
    rebound.__qualname__ = function.__qualname__
    return _jit(rebound)


@intrinsic
def _borrowed(typingctx, value):
    """`value` (an array or a string) without a reference to its memory. Numba counts a reference, with
    an atomic increment and decrement, each time such a value is passed to a helper: half the loop's time
    when the profile arrays were passed six times a step. Only for values kept alive meanwhile by their
    owner (the caller's arguments, or an array used again after the last use of the borrowed one)."""
    def codegen(context, builder, signature, args):
        view = cgutils.create_struct_proxy(value)(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        return view._getvalue()
    return value(value), codegen


@_inline
def _degrees(angle):
    """`angle % 360.0`, the same number, without Numba's call to fmod (a tenth of the loop's time) when
    the angle is within a turn of [0, 360): Python's float % takes fmod (exact: the angle itself here),
    adds 360 to a negative result and makes a zero +0.0."""
    if 0.0 < angle < 360.0:
        return angle
    if angle == 0.0:
        return 0.0
    if -360.0 < angle < 0.0:
        return angle + 360.0
    return angle % 360.0


density_st = _compile(seawater.density_st)
density_pst = _compile(seawater.density_pst)
light_factor = _compile(decay.light_factor)
decay_rate_from_light = _compile(decay.decay_rate_from_light, light_factor=light_factor)
_norm = _compile(um3._norm)
_angle = _compile(um3._angle, _norm=_norm)
_rescale = _compile(um3._rescale, _norm=_norm)
_cross = _compile(um3._cross)
_hypot = _compile(um3._hypot)

G, PI, DEG, COS_20, SIN_20, HUGE_RADIUS = um3.G, um3.PI, um3.DEG, um3.COS_20, um3.SIN_20, um3.HUGE_RADIUS

# ambient variables of the step loop, in the order of AmbientColumn (temperature and salinity first, §5.3)
NEAR_VARIABLES = ("temperature", "salinity", "current_speed", "current_dir", "bg_conc", "decay_rate")
V_TEMP, V_SAL, V_SPEED, V_DIR, V_BG, V_DECAY = range(6)
# the ambient state record: the six variables, then depth, density, current vector
A_DEPTH, A_DENSITY, A_UX, A_UY = 6, 7, 8, 9
EXTRAPOLATION_CODES = {"CONSTANT": 0, "LINEAR_TO_ZERO": 1, "EXTRAPOLATED": 2}
ISOPLETH_CODES = {"concentration": 0, "salinity": 1, "temperature": 2, "speed": 3}
PROFILE_CODES = {"DEFAULT": 0, "POWER_3_2": 1, "GAUSSIAN": 2}
COLUMN_COUNT = len(PLUME_COLUMNS)
# column indices of a row (spec §9.1), by name
_COLUMN_INDEX = {name: index for index, name in enumerate(PLUME_COLUMNS)}
C_DEPTH = _COLUMN_INDEX["depth"]
C_DIAMETER = _COLUMN_INDEX["diameter"]
C_AMBIENT_CURRENT_SPEED = _COLUMN_INDEX["ambient_current_speed"]
C_VELOCITY = _COLUMN_INDEX["velocity"]
C_X = _COLUMN_INDEX["x"]
C_Y = _COLUMN_INDEX["y"]
C_DENSITY = _COLUMN_INDEX["density"]
C_CONCENTRATION = _COLUMN_INDEX["concentration"]
C_DILUTION = _COLUMN_INDEX["dilution"]
C_VERTICAL_ANGLE = _COLUMN_INDEX["vertical_angle"]
C_HORIZONTAL_ANGLE = _COLUMN_INDEX["horizontal_angle"]
C_TIME = _COLUMN_INDEX["time"]
C_CL_DILUTION = _COLUMN_INDEX["cl_dilution"]
C_NET_DILUTION = _COLUMN_INDEX["net_dilution"]
C_SALINITY = _COLUMN_INDEX["salinity"]
C_TEMPERATURE = _COLUMN_INDEX["temperature"]
C_HEIGHT = _COLUMN_INDEX["height"]
C_MASS = _COLUMN_INDEX["mass"]
C_ENTRAINED_MASS = _COLUMN_INDEX["entrained_mass"]
C_HORIZONTAL_DISTANCE = _COLUMN_INDEX["horizontal_distance"]
C_SOURCE_DISTANCE = _COLUMN_INDEX["source_distance"]
C_PATH_LENGTH = _COLUMN_INDEX["path_length"]
C_ISO_DIAMETER = _COLUMN_INDEX["iso_diameter"]
C_ISOPLETH_FACTOR = _COLUMN_INDEX["isopleth_factor"]
C_DENSITY_DIFFERENCE = _COLUMN_INDEX["density_difference"]
C_POLLUTANT_MASS = _COLUMN_INDEX["pollutant_mass"]
C_AMBIENT_DENSITY = _COLUMN_INDEX["ambient_density"]
C_AMBIENT_SALINITY = _COLUMN_INDEX["ambient_salinity"]
C_AMBIENT_TEMPERATURE = _COLUMN_INDEX["ambient_temperature"]
C_AMBIENT_BG_CONC = _COLUMN_INDEX["ambient_bg_conc"]
C_AMBIENT_DECAY_RATE = _COLUMN_INDEX["ambient_decay_rate"]
C_AMBIENT_CURRENT_DIR = _COLUMN_INDEX["ambient_current_dir"]
C_BUILDUP = _COLUMN_INDEX["buildup"]
# bits of a row status (um3.ROW_STATUS_TEXTS order)
(S_TRAP, S_SURFACE, S_MZ, S_BOTTOM, S_CEILING, S_REVERSAL, S_CLOSED, S_STREAM, S_MERGING, S_BEGIN_OVERLAP,
 S_MAX_ITER, S_END_OVERLAP, S_STOP_DILUTION) = (1 << k for k in range(13))
# bits of the stop reason (um3.STOP_TEXTS order), then the two texts that stand alone
STOP_MIXING_ZONE, STOP_ISOPLETH_ABOVE = 1 << 7, 1 << 8
# the info vector returned with the rows
(I_FROUDE, I_STRAT, I_PORT_SPEED, I_AMB_SPEED0, I_RHO_EFF, I_DIAMETER0, I_X, I_Y, I_Z, I_VX, I_VY, I_VZ,
 I_DIAMETER, I_MASS, I_MASS0, I_POLLUTANT, I_POLLUTANT0, I_DILUTION, I_CONC, I_RHO, I_IOTA, I_TIME,
 I_V0X, I_V0Y, I_V0Z, I_ALX, I_ALY, I_ALZ, I_AMB_DEPTH, I_AMB_DECAY, I_STOP, I_FLAGS, I_BOTTOM_STEP,
 I_SPACING, I_COUNT) = range(35)
# bits of I_FLAGS
F_ATVMXZ, F_AMBIENT_EXCEEDS, F_SURFACED, F_CURRENT_SMALL, F_VERTICAL_STILL, F_VERTICAL_CURRENT = (
    1 << k for k in range(6))


@_inline
def _value(k, d, surfaced, depths, values, counts, surface_modes, bottom_modes, vector_averaging, bottom_depth):
    """Variable k of the profile at depth d: `AmbientColumn._value` (spec §5.3)."""
    n = counts[k]
    if n == 1:
        return values[k, 0]
    if d < depths[k, 0] or d <= 0.0:
        # spec §5.3 rule 1 ("over" mode): both bracketing layers are the SECOND layer (kept, §13 item 3)
        v_u, z_u = values[k, 1], depths[k, 1]
        if surface_modes[k] == 1:
            if surfaced:
                return 0.0
            return v_u * (z_u - d) / z_u if z_u != 0.0 else v_u
        return v_u
    i = n - 1
    for j in range(n):
        if d <= depths[k, j]:
            i = j
            break
    z_l, v_l = depths[k, i], values[k, i]
    z_u, v_u = depths[k, i - 1], values[k, i - 1]
    z_f = (d - z_u) / (z_l - z_u) if z_l != z_u else 0.0
    if d > z_l:
        mode = bottom_modes[k]
        if mode == 0:
            return v_l
        if mode == 2:
            return v_u + z_f * (v_l - v_u)
        h = bottom_depth
        if d >= h or h == z_l:
            return 0.0
        return v_l * (h - d) / (h - z_l)
    if k == V_DIR and vector_averaging:
        # spec §5.3 vector averaging, with the shorter rotation (fixed, §13 item 9)
        if z_l != z_u:
            turn = _degrees(v_u - v_l)
            if turn > 180.0:
                turn -= 360.0
            theta = v_l + turn * (z_l - d) / (z_l - z_u)
        else:
            theta = v_l
        return _degrees(theta)
    return v_u + z_f * (v_l - v_u)


@_inline
def _evaluate(amb, depth, surfaced, depths, values, counts, surface_modes, bottom_modes, vector_averaging,
              bottom_depth, decay_is_light, bacteria_model, light_absorb_coeff, eq):
    """`AmbientColumn.evaluate_near` into the record `amb`; returns the sticky `surfaced` flag."""
    d = depth
    if d <= 0.0:
        surfaced = True
        d = 0.0
    for k in range(6):
        amb[k] = _value(k, d, surfaced, depths, values, counts, surface_modes, bottom_modes, vector_averaging,
                        bottom_depth)
    amb[A_DEPTH] = d
    if decay_is_light:
        amb[V_DECAY] = decay_rate_from_light(amb[V_DECAY], amb[V_SAL], amb[V_TEMP], d, bacteria_model,
                                             light_absorb_coeff)
    if amb[V_DECAY] < 0.0:
        amb[V_DECAY] = 0.0
    amb[A_DENSITY] = density_st(amb[V_SAL], amb[V_TEMP]) if eq else density_pst(amb[V_SAL], amb[V_TEMP], d)
    theta = amb[V_DIR] * (PI / 180.0)
    amb[A_UX] = amb[V_SPEED] * math.cos(theta)
    amb[A_UY] = amb[V_SPEED] * math.sin(theta)
    return surfaced


@_inline
def _iso_factor(dilution, diameter, merged, amb, stream_limited, frozen_concentration, kind, iso, source,
                profile, poly, single, num_ports, s, channel_width, initial_diameter, cl_dilution_max):
    """`um3._Isopleth.factor` (spec §8.1): (ι, centre-line dilution, close, new maximum, ambient exceeds)."""
    if merged and num_ports > 1:
        kp = poly if diameter > 2.0 * s else single - (single - poly) * (diameter - s) / s
    else:
        kp = single
    cl = dilution / kp if kp != 0.0 else dilution
    if cl > cl_dilution_max:
        cl_dilution_max = cl
    if kind == 0:
        c_amb = amb[V_BG]
    elif kind == 1:
        c_amb = amb[V_SAL]
    elif kind == 2:
        c_amb = amb[V_TEMP]
    else:
        c_amb = amb[V_SPEED]
    exceeds = iso <= c_amb
    if stream_limited and amb[V_SPEED] != 0.0:
        c_cl = c_amb + 1.5 * (frozen_concentration - c_amb)
        if c_cl == c_amb:
            iota = 0.0
        else:
            arg = 1.0 - (iso - c_amb) / (c_cl - c_amb)
            iota = math.sqrt(arg) if arg > 0.0 else 0.0
        if diameter > 0.0:
            iota = min(iota, channel_width / diameter)
    elif kp == 0.0 or source == c_amb:
        iota = 0.0
    else:
        x = dilution / kp * (iso - c_amb) / (source - c_amb)
        if x > 1.0:
            iota = 0.0
        elif x <= 0.0:
            iota = 1.0
        elif profile == 1:
            iota = (1.0 - math.sqrt(x)) ** (2.0 / 3.0)
        elif profile == 2:
            iota = math.sqrt(-math.log(x)) / 1.888
        else:
            iota = math.sqrt(1.0 - x)
        if dilution < kp and diameter > 0.0:
            a = initial_diameter * (kp - dilution) / kp
            iota = (iota * (diameter - a) + a) / diameter
        if iota > 1.0:
            iota = 1.0
    close = False
    if kind == 0 and iso > source:
        iota, close = 0.0, True
    return iota, max(cl_dilution_max, 1.0), close, cl_dilution_max, exceeds


@_jit
def _put_row(rows, count, step, status, steps, flags, rz, diameter, amb_speed_shown, speed, rx, ry, rho, conc,
             dilution, vx, vy, vz, total_time, cl_dil, net, sal, temp, height, mass, dmass, src_x, src_y,
             path_length, iota, drho, pollutant, amb, buildup):
    """`write_row` of um3.run_um3 (spec §9.1 column order) into row `count`; returns the next row's index."""
    vert = _angle(vx, vy, 0.0, vx, vy, vz) / DEG
    if vz < 0.0:
        vert = -vert
    horiz = _degrees(math.atan2(vy, vx) / DEG) if (vx != 0.0 or vy != 0.0) else 0.0
    row = rows[count]
    row[C_DEPTH] = -rz
    row[C_DIAMETER] = diameter
    row[C_AMBIENT_CURRENT_SPEED] = amb_speed_shown
    row[C_VELOCITY] = speed
    row[C_X] = rx
    row[C_Y] = ry
    row[C_DENSITY] = rho
    row[C_CONCENTRATION] = conc
    row[C_DILUTION] = dilution
    row[C_VERTICAL_ANGLE] = vert
    row[C_HORIZONTAL_ANGLE] = horiz
    row[C_TIME] = total_time
    row[C_CL_DILUTION] = cl_dil
    row[C_NET_DILUTION] = net
    row[C_SALINITY] = sal
    row[C_TEMPERATURE] = temp
    row[C_HEIGHT] = height
    row[C_MASS] = mass
    row[C_ENTRAINED_MASS] = dmass
    row[C_HORIZONTAL_DISTANCE] = _hypot(rx, ry)               # spec §9.1: from the origin
    row[C_SOURCE_DISTANCE] = _hypot(rx - src_x, ry - src_y)
    row[C_PATH_LENGTH] = path_length
    row[C_ISO_DIAMETER] = iota * diameter
    row[C_ISOPLETH_FACTOR] = iota
    row[C_DENSITY_DIFFERENCE] = drho            # spec §7.4 item 2: the step's Δρ
    row[C_POLLUTANT_MASS] = pollutant
    row[C_AMBIENT_DENSITY] = amb[A_DENSITY]
    row[C_AMBIENT_SALINITY] = amb[V_SAL]
    row[C_AMBIENT_TEMPERATURE] = amb[V_TEMP]
    row[C_AMBIENT_BG_CONC] = amb[V_BG]
    row[C_AMBIENT_DECAY_RATE] = amb[V_DECAY]
    row[C_AMBIENT_CURRENT_DIR] = amb[V_DIR]
    row[C_BUILDUP] = buildup
    steps[count] = step
    flags[count] = status
    return count + 1


@_jit
def um3_loop(depths, values, counts, surface_modes, bottom_modes, bottom, decay_is_light, bacteria_model,
             light_absorb_coeff, vector_averaging, eq, mean_speed, deepest, surface_density,
             n_ports, port_spacing, port_depth, flow, port_diameter, contraction_coeff, horizontal_angle,
             vertical_angle, effluent_salinity, effluent_temperature, conc0, src_x, src_y, mz_distance,
             iso_kind, iso_value, profile, poly, single, channel_width, ceiling, report_effective,
             induced_current, aspiration, write_freq, wsf, stop_on_surface, stop_on_bottom, max_dilution,
             trap_limit, reversal_limit, max_steps, missing, buildup):
    """run_um3 from §6.1 to the end of the loop. Returns (rows, steps, status bits, matched radial speed
    per row (NaN where no "matched energy" text), info vector (I_* indices))."""
    sqrt = math.sqrt
    depths, values, counts = _borrowed(depths), _borrowed(values), _borrowed(counts)
    surface_modes, bottom_modes = _borrowed(surface_modes), _borrowed(bottom_modes)
    bacteria_model = _borrowed(bacteria_model)
    ambient_record = np.zeros(10)
    amb = _borrowed(ambient_record)     # ambient_record is read at the end, after the last use of amb
    info = np.zeros(I_COUNT)
    flags_out = 0
    size = max_steps + 2                # at most one row a step, and step 0
    rows = np.empty((size, COLUMN_COUNT))
    steps = np.empty(size, np.int64)
    statuses = np.empty(size, np.int64)
    matched_speed = np.full(size, np.nan)
    count = 0

    # ---- spec §6.1 port geometry and initial element
    spacing = port_spacing if n_ports > 1 else missing
    diameter = port_diameter * math.sqrt(contraction_coeff)
    initial_diameter = diameter
    b0 = diameter / 2.0
    port_speed = flow / (n_ports * PI * b0 * b0)
    h_rad, v_rad = horizontal_angle * DEG, vertical_angle * DEG
    vx = port_speed * math.cos(h_rad) * math.cos(v_rad)
    vy = port_speed * math.sin(h_rad) * math.cos(v_rad)
    vz = port_speed * math.sin(v_rad)
    v0x, v0y, v0z = vx, vy, vz

    surfaced = _evaluate(amb, port_depth, False, depths, values, counts, surface_modes, bottom_modes,
                         vector_averaging, bottom, decay_is_light, bacteria_model, light_absorb_coeff, eq)
    rho_eff = density_st(effluent_salinity, effluent_temperature) if eq else \
        density_pst(effluent_salinity, effluent_temperature, port_depth)          # ρ0
    rho = rho_eff
    drho = amb[A_DENSITY] - rho_eff
    height = 0.1 * port_diameter                   # spec §6.1: uncontracted port diameter
    mass0 = rho_eff * PI * b0 * b0 * height
    mass = mass0
    sal, temp = effluent_salinity, effluent_temperature
    rx, ry, rz = src_x, src_y, -port_depth
    drx = dry = drz = 0.0
    pollutant = conc0 * mass0
    pollutant0 = pollutant
    conc = conc0
    sep = spacing - diameter
    dt = 0.003
    dilution = 0.0
    total_time = 0.0
    path_length = 0.0
    dmass = 0.0
    amb_speed_shown = amb[V_SPEED] if amb[V_SPEED] > 0.0 else 1e-5

    # ---- spec §6.2 case constants
    stream_flow = channel_width * mean_speed * max(port_depth, deepest)

    # ---- spec §6.3 initial curvature vector: the project always takes the δ = 0 branch (§13 item 1)
    cx, cy, cz = _cross(vx, vy, vz, 0.0, 0.0, -G)
    c1x, c1y, c1z = _rescale(diameter, cx, cy, cz)
    rcx, rcy, rcz = _rescale(HUGE_RADIUS, c1x, c1y, c1z)
    bx, by, bz = _rescale(b0, rcx, rcy, rcz)                     # B0
    c2x, c2y, c2z = _cross(rcx, rcy, rcz, vx, vy, vz)
    ax_, ay_, az_ = _rescale(b0, c2x, c2y, c2z)                  # A

    # ---- spec §9.2 step-0 memo values
    if drho == 0.0:
        froude = 9.999e15
    else:
        sign = 1.0 if drho > 0.0 else -1.0
        froude = sign * port_speed / math.sqrt(G * diameter * abs(drho) / rho_eff)
    strat = (amb[A_DENSITY] - surface_density) * diameter / port_depth / drho if drho != 0.0 else 0.0
    current_small = _hypot(amb[A_UX], amb[A_UY]) < 1e-5
    if current_small:
        flags_out |= F_CURRENT_SMALL
    info[I_FROUDE], info[I_STRAT], info[I_PORT_SPEED], info[I_AMB_SPEED0] = froude, strat, port_speed, amb_speed_shown
    info[I_RHO_EFF], info[I_DIAMETER0], info[I_SPACING] = rho_eff, diameter, spacing

    # ---- spec §6.5 loop set-up: trajectory-plane normal and diffuser axis
    ang_gv = _angle(0.0, 0.0, -G, vx, vy, vz)
    if abs(ang_gv) < 1e-10 or abs(ang_gv - PI) < 1e-10:
        if current_small:
            nvx, nvy, nvz = 0.0, 1.0, 0.0
            flags_out |= F_VERTICAL_STILL
        else:
            c3x, c3y, c3z = _cross(0.0, 0.0, -G, amb[A_UX], amb[A_UY], 0.0)
            nvx, nvy, nvz = _rescale(1.0, c3x, c3y, c3z)
            flags_out |= F_VERTICAL_CURRENT
    else:
        c3x, c3y, c3z = _cross(vx, vy, vz, 0.0, 0.0, -G)
        nvx, nvy, nvz = _rescale(1.0, c3x, c3y, c3z)
    alx, aly, alz = nvx, nvy, nvz                   # v_align, the diffuser axis
    aox, aoy, aoz = _rescale(mz_distance, v0x, v0y, v0z)   # A_o
    ao_len = sqrt(aox * aox + aoy * aoy + aoz * aoz)

    iso_source = (conc0 if iso_kind == 0 else effluent_salinity if iso_kind == 1 else effluent_temperature
                  if iso_kind == 2 else flow / (PI * initial_diameter ** 2 / 4.0))
    cl_dilution_max = 1.0
    ambient_exceeds = False
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
    vpx, vpy, vpz = vx, vy, vz          # V_prev: velocity at the start of the previous step
    drho_prev = drho
    bottom_contact_step = -1
    speed = port_speed
    s_half = missing
    stop = 0

    # ---- spec §6.4 step 0: the status flags marked * in §7.6, from the boundary points R ± B0
    iota, cl_dil, close, cl_dilution_max, exceeds = _iso_factor(
        0.0, diameter, False, amb, False, 0.0, iso_kind, iso_value, iso_source, profile, poly, single, n_ports,
        spacing, channel_width, initial_diameter, cl_dilution_max)
    ambient_exceeds = ambient_exceeds or exceeds
    net0 = (conc0 / conc if conc > 0.0 else 0.0) if report_effective and amb[V_BG] != 0.0 else dilution
    dilution = 1.0
    status = 0
    if rz + bz > 0.0 or rz - bz > 0.0:
        has_surfaced = True
        status |= S_SURFACE
    if rz + bz < -bottom or rz - bz < -bottom:
        bottomed = True
        bottom_contact_step = 0
        status |= S_BOTTOM
    if ceiling > 0.0 and (-(rz + bz) < ceiling or -(rz - bz) < ceiling):
        reached_ceiling = True
        status |= S_CEILING
    count = _put_row(
        rows, count, 0, status, steps, statuses, rz, diameter, amb_speed_shown, speed, rx, ry, rho, conc, dilution,
        vx, vy, vz, total_time, cl_dil, net0, sal, temp, height, mass, dmass, src_x, src_y, path_length, iota,
        drho, pollutant, amb, buildup)
    done = close
    if close:
        stop = STOP_ISOPLETH_ABOVE
    n = 0

    step_length = 0.0
    delta = 0.0
    changes = 0                         # status changes not written yet (kept until a row is written)
    while not done and not atvmxz:
        n += 1
        # ---- spec §7.1 entrainment, from the end-of-previous-step values
        disp = step_length if n > 1 else speed * dt
        db = b - b_prev
        turning = delta if n > 1 else _angle(vpx, vpy, vpz, vx, vy, vz)
        vmag = sqrt(vx * vx + vy * vy + vz * vz)
        if vmag == 0.0 or -(vz / vmag) < 1.0:
            nvx, nvy, nvz = vy * -G - vz * 0.0, vz * 0.0 - vx * -G, vx * 0.0 - vy * 0.0
            nv_len = sqrt(nvx * nvx + nvy * nvy + nvz * nvz)
            if nv_len == 0.0:
                nvx = nvy = nvz = 0.0
            else:
                f = 1.0 / nv_len
                nvx, nvy, nvz = nvx * f, nvy * f, nvz * f
        uax, uay = amb[A_UX], amb[A_UY]
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
            s_half = missing
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
        k_ent = amb[A_DENSITY] * dt * b * height
        cyl = 2.0 * k_ent * abs(sin_t) * a3 * (u_par + v_ind)
        cyln = 2.0 * k_ent * a5 * u_perp
        if disp != 0.0:
            dot_uv = upx * vx + upy * vy + upz * vz
            rgro = abs(PI / disp * cos_t * db * a2 * u_par * k_ent) if (dot_uv > 0.0) == (db > 0.0) else 0.0
            rc_len = sqrt(rcx * rcx + rcy * rcy + rcz * rcz)
            v_dot_rc = (vx * rcx + vy * rcy + vz * rcz) / rc_len if rc_len != 0.0 else 0.0
            curv = (PI / 2.0) * b * b * turning / disp * height * amb[A_DENSITY] * a4 \
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
        if u_w > v_e:
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
        drz_prev = drz
        drho_prev = drho
        b_prev = b
        sep_prev = sep
        total = mass + dm
        sal = (mass * sal + dm * amb[V_SAL]) / total
        temp = (mass * temp + dm * amb[V_TEMP]) / total
        rho = density_st(sal, temp) if eq else density_pst(sal, temp, start_depth)
        drho = amb[A_DENSITY] - rho
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
        pollutant = pollutant - amb[V_DECAY] * (pollutant - mass * amb[V_BG]) * dt \
            + dm * amb[V_BG] + dm * buildup
        conc = pollutant / mass * (rho / rho_eff)
        dmass = dm
        diameter = 2.0 * b
        hist_old_z, hist_old_d = hist_new_z, hist_new_d
        hist_new_z, hist_new_d = rz, diameter
        surfaced = _evaluate(amb, start_depth, surfaced, depths, values, counts, surface_modes, bottom_modes,
                             vector_averaging, bottom, decay_is_light, bacteria_model, light_absorb_coeff, eq)
        amb_speed_shown = amb[V_SPEED]

        # spec §7.4 item 10, evaluated at the current step (see um3.run_um3)
        boundary_iota = iota
        iota, cl_dil, close, cl_dilution_max, exceeds = _iso_factor(
            dilution, diameter, has_merged, amb, stream_limited, frozen_conc, iso_kind, iso_value, iso_source,
            profile, poly, single, n_ports, spacing, channel_width, initial_diameter, cl_dilution_max)
        ambient_exceeds = ambient_exceeds or exceeds

        # spec §7.4 item 11 body geometry, from the current diameter
        r = diameter / 2.0
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
            c4x, c4y, c4z = _cross(vx, vy, vz, ax_, ay_, az_)
            rcx, rcy, rcz = _rescale(HUGE_RADIUS, c4x, c4y, c4z)
        c_vg = -(vz / speed) if speed != 0.0 else 0.0
        if c_vg >= 1.0 or c_vg <= -1.0:
            ax_, ay_, az_ = r, 0.0, 0.0
        else:
            gx, gy = 0.0 * vz - -G * vy, -G * vx - 0.0 * vz
            g_len = sqrt(gx * gx + gy * gy + (0.0 * vy - 0.0 * vx) ** 2)
            if g_len == 0.0:
                ax_, ay_, az_ = 0.0, 0.0, 0.0
            else:
                f = r / g_len
                ax_, ay_, az_ = gx * f, gy * f, (0.0 * vy - 0.0 * vx) * f
        abx, aby, abz = ay_ * vz - az_ * vy, az_ * vx - ax_ * vz, ax_ * vy - ay_ * vx
        ab_len = sqrt(abx * abx + aby * aby + abz * abz)
        bz = abz * (r / ab_len) if ab_len != 0.0 else 0.0
        top_z = rz + boundary_iota * bz
        low_z = rz - boundary_iota * bz
        bottom_contact = top_z < -bottom or low_z < -bottom
        if bottom_contact and bottom_contact_step < 0:
            bottom_contact_step = n
        surfacing = top_z > 0.0 or low_z > 0.0
        net = (conc0 / conc if conc > 0.0 else 0.0) if report_effective and amb[V_BG] != 0.0 else dilution
        depth_now = -rz
        if depth_now == 0.0:
            energy = 1e9
        else:
            energy = G * (amb[A_DENSITY] - rho) / amb[A_DENSITY] * depth_now \
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
        max_iter = n > max_steps
        closed = iota <= 0.0
        if (max_iter or closed or traps >= trap_limit or reversals >= reversal_limit
                or (surfacing and stop_on_surface) or (bottomed and stop_on_bottom) or dilution > max_dilution):
            done = True
            stop = ((1 if max_iter else 0) | (2 if traps >= trap_limit else 0)
                    | (4 if reversals >= reversal_limit else 0) | (8 if surfacing and stop_on_surface else 0)
                    | (16 if bottomed and stop_on_bottom else 0) | (32 if dilution > max_dilution else 0)
                    | (64 if closed else 0))
        if ceiling > 0.0 and not reached_ceiling and (-top_z < ceiling or -low_z < ceiling):
            reached_ceiling = True
            changes |= S_CEILING
        if surfacing and not has_surfaced:
            has_surfaced = True
            changes |= S_SURFACE
        if bottom_contact and not bottomed:
            bottomed = True
            changes |= S_BOTTOM
        if hit_mz:
            atvmxz = True
            if not done:
                stop = STOP_MIXING_ZONE
        if merge_limit == 0.0 and diameter > 2.0 * port_depth:
            merge_limit = port_depth
            merging = True
        if (not stream_limited and _hypot(amb[A_UX], amb[A_UY]) > 1e-5
                and dilution > (stream_flow + flow) / flow):
            stream_limited = True
            changes |= S_STREAM
            if merge_limit == 0.0:
                merge_limit = port_depth
            frozen_conc = pollutant / mass
        if merging and not has_merged:
            has_merged = True
            changes |= S_MERGING
        matched = energy_product < 0.0 and diameter > depth_now

        # ---- spec §7.7 row writing
        write = (diameter == 0.0 or drho == 0.0 or drho_prev == 0.0 or done or max_iter
                 or drz * drz_prev < 0.0 or (n >= write_freq and n % wsf == 0)
                 or (changes & S_MERGING) != 0 or trap_now or reversal_flag
                 or drz == 0.0 or (drz_prev == 0.0 and (reversals == reversal_limit or traps == trap_limit))
                 or (changes & S_SURFACE) != 0 or (changes & S_BOTTOM) != 0 or lap != lap_old
                 or dilution > max_dilution or atvmxz or ((changes & S_CEILING) != 0 and ceiling > 0.0)
                 or matched)
        if write:
            status = changes
            if trap_now:
                status |= S_TRAP
            if atvmxz:
                status |= S_MZ
            if reversal_flag:
                status |= S_REVERSAL
            if closed:
                status |= S_CLOSED
            if lap and not lap_old:
                status |= S_BEGIN_OVERLAP
            if max_iter:
                status |= S_MAX_ITER
            if lap_old and not lap:
                status |= S_END_OVERLAP
            if dilution > max_dilution:
                status |= S_STOP_DILUTION
            if matched:
                matched_speed[count] = 0.25 * diameter * speed / depth_now
            dilution = mass / mass0 * rho_eff / rho
            count = _put_row(
                rows, count, n, status, steps, statuses, rz, diameter, amb_speed_shown, speed, rx, ry, rho, conc,
                dilution, vx, vy, vz, total_time, cl_dil, net, sal, temp, height, mass, dmass, src_x, src_y,
                path_length, iota, drho, pollutant, amb, buildup)
            changes = 0
        lap_old = lap

    if atvmxz:
        flags_out |= F_ATVMXZ
    if ambient_exceeds:
        flags_out |= F_AMBIENT_EXCEEDS
    if surfaced:
        flags_out |= F_SURFACED
    info[I_X], info[I_Y], info[I_Z], info[I_VX], info[I_VY], info[I_VZ] = rx, ry, rz, vx, vy, vz
    info[I_DIAMETER], info[I_MASS], info[I_MASS0] = diameter, mass, mass0
    info[I_POLLUTANT], info[I_POLLUTANT0], info[I_DILUTION] = pollutant, pollutant0, dilution
    info[I_CONC], info[I_RHO], info[I_IOTA], info[I_TIME] = conc, rho, iota, total_time
    info[I_V0X], info[I_V0Y], info[I_V0Z] = v0x, v0y, v0z
    info[I_ALX], info[I_ALY], info[I_ALZ] = alx, aly, alz
    info[I_AMB_DEPTH], info[I_AMB_DECAY] = ambient_record[A_DEPTH], ambient_record[V_DECAY]
    info[I_STOP], info[I_FLAGS], info[I_BOTTOM_STEP] = stop, flags_out, bottom_contact_step
    return rows[:count].copy(), steps[:count].copy(), statuses[:count].copy(), matched_speed[:count].copy(), info
