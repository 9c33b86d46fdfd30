"""Bacteria decay-rate models driven by solar radiation (spec §3), rates in s⁻¹.

The reference port cannot reach these (spec §13 item 5: ly/hr crashes); the project makes them work:
a decay rate given in ly/hr is the surface solar radiation I, and the first-order rate at depth z comes
from the bacteria model with the light factor L(z).
"""
from __future__ import annotations

import math


def light_factor(depth: float, light_absorb_coeff: float) -> float:
    """Depth-averaged light attenuation (spec §3): 1 at the surface, (1 − e^(−k_e z))/(k_e z) below."""
    kz = light_absorb_coeff * depth
    if depth <= 0.0 or kz <= 0.0:
        return 1.0
    return (1.0 - math.exp(-kz)) / kz


def decay_rate_from_light(radiation: float, salinity: float, temperature: float, depth: float,
                          bacteria_model: str, light_absorb_coeff: float) -> float:
    """First-order decay rate (s⁻¹) for solar radiation `radiation` (ly/hr) at the surface (spec §3)."""
    light = radiation * light_factor(depth, light_absorb_coeff)
    if bacteria_model == "COLIFORM_MANCINI":       # Mancini (1978)
        a = 1.07 ** (temperature - 20.0)
        if salinity < 0.0:
            base = 0.8 * a
        elif salinity < 33.0:
            base = (0.8 + 0.6 * salinity / 33.0) * a
        else:
            base = 1.4 * a
        return (base + light) / 86400.0
    if bacteria_model == "COLIFORM_301H":           # 301(h) B-68
        a = 2.303 * math.exp(2.303 * (0.0295 * temperature - 2.292))
        return (2.303 * a + 1.24 * light * 0.04184) / 3600.0
    # ENTEROCCOUS_301H, 301(h) B-69
    return (0.5262 / 24.0 + 1.24 * light * 0.04184) / 3600.0
