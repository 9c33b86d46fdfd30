"""Equations of state for sea water (spec §4): ρ in kg/m³ from salinity (psu), temperature (°C), depth (m)."""
from __future__ import annotations

import math


def density_st(salinity: float, temperature: float) -> float:
    """Knudsen–Ekman σ_t, no pressure term (spec §4.1, the default "S,T" equation of state)."""
    s, t = salinity, temperature
    sigma0 = ((6.8e-6 * s - 4.82e-4) * s + 0.8149) * s - 0.093
    b = 1e-6 * t * ((0.01667 * t - 0.8164) * t + 18.03)
    a = 1e-3 * t * ((0.0010843 * t - 0.09818) * t + 4.7867)
    sum_t = (t - 3.98) ** 2 * (t + 283.0) / (503.57 * (t + 67.26))
    sigma_t = (sigma0 + 0.1324) * (1.0 - a + b * (sigma0 - 0.1324)) - sum_t
    return 1000.0 + sigma_t


def density_pst(salinity: float, temperature: float, depth: float) -> float:
    """UNESCO EOS-80 (Millero & Poisson 1981; UNESCO 1983) with the published coefficients.

    spec §4.2 and §13 item 4: the reference port's three transcription errors are fixed here.
    Pressure is gauge pressure in bar from depth, p = 0.1·depth.
    """
    s, t = salinity, temperature
    p = 0.1 * depth
    s15 = s * math.sqrt(s) if s > 0.0 else 0.0
    rho_w = (((( 6.536332e-9 * t - 1.120083e-6) * t + 1.001685e-4) * t - 9.095290e-3) * t
             + 6.793952e-2) * t + 999.842594
    rho0 = (rho_w
            + s * ((((5.3875e-9 * t - 8.2467e-7) * t + 7.6438e-5) * t - 4.0899e-3) * t + 0.824493)
            + s15 * ((-1.6546e-6 * t + 1.0227e-4) * t - 5.72466e-3)
            + 4.8314e-4 * s * s)
    if p == 0.0:
        return rho0
    k_w = (((-5.155288e-5 * t + 1.360477e-2) * t - 2.327105) * t + 148.4206) * t + 19652.21
    k0 = (k_w
          + s * (((-6.1670e-5 * t + 1.09987e-2) * t - 0.603459) * t + 54.6746)
          + s15 * ((-5.3009e-4 * t + 1.6483e-2) * t + 7.944e-2))
    a = (((-5.77905e-7 * t + 1.16092e-4) * t + 1.43713e-3) * t + 3.239908
         + s * ((-1.6078e-6 * t - 1.0981e-5) * t + 2.2838e-3) + 1.91075e-4 * s15)
    b = ((5.2787e-8 * t - 6.12293e-6) * t + 8.50935e-5
         + s * ((9.1697e-10 * t + 2.0816e-8) * t - 9.9348e-7))
    k = k0 + (a + b * p) * p
    return rho0 / (1.0 - p / k)


def density(salinity: float, temperature: float, depth: float, at_equilibrium: bool = True) -> float:
    """ρ(S, T, depth) with the equation of state chosen by the model setting `at_equilibrium`."""
    if at_equilibrium:
        return density_st(salinity, temperature)
    return density_pst(salinity, temperature, depth)
