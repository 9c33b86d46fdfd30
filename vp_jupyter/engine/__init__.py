"""Pure numerics of vp-jupyter: UM3 near field (and later far field, tidal buildup).

Inputs are the SI dataclasses of :mod:`vp_jupyter.engine.types`; nothing here does I/O, knows a unit
string, imports pandas or Jupyter.
"""
