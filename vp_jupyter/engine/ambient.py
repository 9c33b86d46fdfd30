"""Ambient profile: filling missing layer values (spec §5.2) and evaluation at a depth (spec §5.3)."""
from __future__ import annotations

import math
from bisect import bisect_left
from typing import Optional, Sequence

from .decay import decay_rate_from_light
from .seawater import density, density_st
from .types import Ambient, VariableProfile


def fill_values(depths: Sequence[float], values: Sequence[Optional[float]], surface: str, bottom: str,
                bottom_depth: float, point_depths: Sequence[float] | None = None) -> list[float]:
    """Fill the missing (None) values of one variable at `depths` (spec §5.2).

    The known points are the non-None `values` at `depths`, or, for a time-series variable, `values`
    at its own `point_depths`. Works in any units as long as all depths share one unit.
    Raises ValueError if there is no point at all. O(n log n) in the number of depths and points.
    """
    if point_depths is None:
        points = [(d, v) for d, v in zip(depths, values) if v is not None]
    else:
        points = [(d, v) for d, v in zip(point_depths, values) if v is not None]
    if not points:
        raise ValueError("no value given at any depth")
    points.sort(key=lambda p: p[0])
    point_depths_sorted = [p[0] for p in points]
    (d1, v1), (dn, vn) = points[0], points[-1]
    out: list[float] = []
    for d in depths:
        if d < d1:
            if surface == "EXTRAPOLATED" and len(points) > 1:
                (da, va), (db, vb) = points[0], points[1]
                out.append(va + (d - da) * (vb - va) / (db - da))
            elif surface == "LINEAR_TO_ZERO":
                out.append(v1 * d / d1 if d1 != 0 else v1)
            else:
                out.append(v1)
        elif d > dn:
            if bottom == "EXTRAPOLATED" and len(points) > 1:
                (da, va), (db, vb) = points[-2], points[-1]
                out.append(vb + (d - db) * (vb - va) / (db - da))
            elif bottom == "LINEAR_TO_ZERO":
                out.append(vn * (d - bottom_depth) / (dn - bottom_depth) if dn != bottom_depth else vn)
            else:
                out.append(vn)
        else:
            k = bisect_left(point_depths_sorted, d)      # the first point at or below d (O(log n))
            db, vb = points[k]
            if d == db:
                out.append(vb)
            else:
                da, va = points[k - 1]
                out.append(va + (d - da) * (vb - va) / (db - da))
    return out


class AmbientState:
    """Ambient values at one depth, SI (a reusable record; the step loop overwrites it in place)."""
    __slots__ = ("depth", "current_speed", "current_dir", "salinity", "temperature", "bg_conc",
                 "decay_rate", "ff_velocity", "ff_dir", "ff_diff_coeff", "density", "ux", "uy")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0.0)

    def copy(self) -> "AmbientState":
        other = AmbientState()
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__}


def _shortest_turn(from_deg: float, to_deg: float) -> float:
    """Signed rotation (deg, in (−180, 180]) from one direction to another."""
    turn = (to_deg - from_deg) % 360.0
    return turn - 360.0 if turn > 180.0 else turn


class AmbientColumn:
    """Evaluates a filled SI ambient profile at a depth (spec §5.3)."""

    def __init__(self, ambient: Ambient, *, vector_averaging: bool, at_equilibrium: bool,
                 bacteria_model: str = "COLIFORM_MANCINI", light_absorb_coeff: float = 0.16) -> None:
        self.bottom_depth = ambient.bottom_depth
        self.vector_averaging = vector_averaging
        self.at_equilibrium = at_equilibrium
        self.decay_is_light = ambient.decay_is_light
        self.bacteria_model = bacteria_model
        self.light_absorb_coeff = light_absorb_coeff
        self.surfaced = False   # spec §5.3 rule 1: sticky once the evaluation depth reached the surface
        # temperature and salinity first (spec §5.3 item 4), then the rest
        order = ("temperature", "salinity", "current_speed", "current_dir", "bg_conc", "decay_rate",
                 "ff_velocity", "ff_dir", "ff_diff_coeff")
        self.profiles = [(name, ambient.profiles[name]) for name in order]
        # the variables the step loop needs, grouped by shared depth lists (the bracketing of spec §5.3
        # is computed once per group and step)
        groups: dict[tuple[float, ...], list[tuple[str, VariableProfile]]] = {}
        for name, prof in self.profiles[:6]:
            groups.setdefault(prof.depths, []).append((name, prof))
        # per group: (depths, members, special, [(name, values, vector-averaged direction)]); `special`
        # groups have a surface or bottom rule other than a constant and go through `_value`
        self.near_groups = [(depths, members,
                             any(p.surface == "LINEAR_TO_ZERO" or p.bottom != "CONSTANT" for _, p in members),
                             [(n, p.values, n == "current_dir" and vector_averaging) for n, p in members])
                            for depths, members in groups.items()]

    def _value(self, name: str, prof: VariableProfile, d: float) -> float:
        depths, values = prof.depths, prof.values
        n = len(depths)
        if n == 1:
            return values[0]
        if d < depths[0] or d <= 0.0:
            # spec §5.3 rule 1 ("over" mode): both bracketing layers are the SECOND layer (kept, §13 item 3)
            v_u, z_u = values[1], depths[1]
            if prof.surface == "LINEAR_TO_ZERO":
                if self.surfaced:
                    return 0.0
                return v_u * (z_u - d) / z_u if z_u != 0.0 else v_u
            return v_u
        i = min(bisect_left(depths, d), n - 1)      # the first layer at or below d, else the deepest
        z_l, v_l = depths[i], values[i]
        z_u, v_u = depths[i - 1], values[i - 1]     # i = 0 wraps to the deepest layer, harmless (z_f = 1)
        z_f = (d - z_u) / (z_l - z_u) if z_l != z_u else 0.0
        if d > z_l:     # below the deepest point
            mode = prof.bottom
            if mode == "CONSTANT":
                return v_l
            if mode == "EXTRAPOLATED":
                return v_u + z_f * (v_l - v_u)
            # LINEAR_TO_ZERO, fixed (spec §13 "Fixed": §5.3): straight line from the deepest point to 0 at the bottom
            h = self.bottom_depth
            if d >= h or h == z_l:
                return 0.0
            return v_l * (h - d) / (h - z_l)
        if name == "current_dir" and self.vector_averaging:
            # spec §5.3 vector averaging, with the shorter rotation (fixed, §13 item 9)
            theta = v_l + _shortest_turn(v_l, v_u) * (z_l - d) / (z_l - z_u) if z_l != z_u else v_l
            return theta % 360.0
        return v_u + z_f * (v_l - v_u)

    def evaluate_near(self, depth: float, out: AmbientState) -> AmbientState:
        """The step loop's ambient at `depth`: temperature, salinity, current, background and decay,
        density and the current vector (spec §5.3; the far-field variables are left as they were).
        Same numbers as `evaluate`, with the bracketing done once per shared depth list."""
        d = depth
        if d <= 0.0:
            self.surfaced = True
            d = 0.0
        for depths, members, special, interpolated in self.near_groups:
            n = len(depths)
            if special or n == 1 or d < depths[0] or d <= 0.0:
                for name, prof in members:
                    setattr(out, name, self._value(name, prof, d))
                continue
            i = min(bisect_left(depths, d), n - 1)  # the first layer at or below d, else the deepest
            z_l, z_u = depths[i], depths[i - 1]
            if d > z_l:           # below the deepest point, every member CONSTANT here
                for name, prof in members:
                    setattr(out, name, prof.values[i])
                continue
            z_f = (d - z_u) / (z_l - z_u) if z_l != z_u else 0.0
            for name, values, vector in interpolated:
                v_u = values[i - 1]
                if vector:          # as `_value`: the shorter rotation between the layers (§13 item 9)
                    v_l = values[i]
                    theta = v_l + _shortest_turn(v_l, v_u) * (z_l - d) / (z_l - z_u) if z_l != z_u else v_l
                    setattr(out, name, theta % 360.0)
                else:
                    setattr(out, name, v_u + z_f * (values[i] - v_u))
        return self._derived(out, d)

    def evaluate(self, depth: float, out: AmbientState, near_field: bool = True) -> AmbientState:
        """Fill `out` with the ambient at `depth` (m); spec §5.3."""
        d = depth
        if d <= 0.0:
            if near_field:
                self.surfaced = True
            d = 0.0
        for name, prof in self.profiles:
            setattr(out, name, self._value(name, prof, d))
        return self._derived(out, d)

    def evaluate_surface(self, out: AmbientState) -> AmbientState:
        """The ambient at the water surface for the far field (spec §10.1, fixed §13 item 10): each
        variable at depth 0 by its own surface extrapolation, no second-layer slip."""
        for name, prof in self.profiles:
            depths, values = prof.depths, prof.values
            if depths[0] <= 0.0 or len(depths) == 1:
                value = values[0]
            elif prof.surface == "EXTRAPOLATED":
                value = values[0] - depths[0] * (values[1] - values[0]) / (depths[1] - depths[0])
            elif prof.surface == "LINEAR_TO_ZERO":
                value = 0.0
            else:
                value = values[0]
            setattr(out, name, value)
        return self._derived(out, 0.0)

    def _derived(self, out: AmbientState, d: float) -> AmbientState:
        """Depth, light-driven decay (spec §3), non-negative decay, density and the current vector."""
        out.depth = d
        if self.decay_is_light:
            out.decay_rate = decay_rate_from_light(out.decay_rate, out.salinity, out.temperature, d,
                                                   self.bacteria_model, self.light_absorb_coeff)
        if out.decay_rate < 0.0:
            out.decay_rate = 0.0
        if self.at_equilibrium:
            out.density = density_st(out.salinity, out.temperature)
        else:
            out.density = density(out.salinity, out.temperature, d, False)
        theta = out.current_dir * (math.pi / 180.0)
        out.ux = out.current_speed * math.cos(theta)
        out.uy = out.current_speed * math.sin(theta)
        return out
