"""Input distributions of an uncertainty study and the samples drawn from them.

A distribution is a scipy.stats frozen distribution (anything with ``ppf``), or one of these spellings (a
list or tuple, so it can come from JSON), values in the units the case gives the field in:

* ``("normal", mean, sd)``
* ``("uniform", low, high)``
* ``("lognormal", median, gsd)``: geometric standard deviation gsd >= 1 (log-space sd = ln gsd)
* ``("triangular", low, mode, high)``
* ``("constant", value)``

A spread of zero (sd 0, low = high, gsd 1) is a constant: every member gets exactly that value.

Samples are drawn on the unit hypercube and mapped through each distribution's inverse CDF (``ppf``):
``"lhs"`` Latin hypercube (McKay, Beckman & Conover 1979; `scipy.stats.qmc.LatinHypercube`), ``"sobol"``
scrambled Sobol' sequence (Sobol' 1967, Owen scrambling; `scipy.stats.qmc.Sobol`; best with n a power of
2), or ``"random"`` plain Monte Carlo (`numpy.random.default_rng`). A `seed` makes the sample repeatable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

METHODS = ("lhs", "sobol", "random")
SPELLINGS = {"normal": ("mean", "sd"), "uniform": ("low", "high"), "lognormal": ("median", "gsd"),
             "triangular": ("low", "mode", "high"), "constant": ("value",)}


@dataclass(frozen=True)
class Constant:
    """A distribution with all its mass at `value` (a spelled distribution with zero spread)."""
    value: float

    def ppf(self, q: Any) -> np.ndarray:
        return np.full(np.shape(q), self.value, dtype=float)


@dataclass(frozen=True)
class Distribution:
    """One input's distribution: `frozen` has `ppf`; `text` describes it for tables and reports."""
    frozen: Any
    text: str
    spec: Any = None                # the JSON spelling, when it was spelled

    def ppf(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(self.frozen.ppf(q), dtype=float)


def distribution(key: str, spec: Any) -> Distribution:
    """The Distribution of one input (ValueError naming the key when the spelling is wrong)."""
    if hasattr(spec, "ppf") and not isinstance(spec, (list, tuple)):
        return Distribution(spec, _describe_frozen(spec))
    if not isinstance(spec, (list, tuple)) or not spec or not isinstance(spec[0], str):
        raise ValueError(f"{key}: a distribution is a scipy.stats frozen distribution or a list such as "
                         f"['normal', mean, sd]; spellings: {_spellings()} (got {spec!r})")
    name, params = spec[0].lower(), list(spec[1:])
    if name not in SPELLINGS:
        raise ValueError(f"{key}: unknown distribution {spec[0]!r}; spellings: {_spellings()}")
    expected = SPELLINGS[name]
    if len(params) != len(expected) or not all(_is_number(p) for p in params):
        raise ValueError(f"{key}: {name} takes {len(expected)} number(s) ({', '.join(expected)}) (got {params!r})")
    p = [float(v) for v in params]
    text = f"{name}({', '.join(f'{n}={v:g}' for n, v in zip(expected, p))})"
    spelled = [name, *p]
    from scipy import stats

    if name == "constant":
        return Distribution(Constant(p[0]), text, spelled)
    if name == "normal":
        _require(key, p[1] >= 0, "sd must be >= 0")
        frozen = Constant(p[0]) if p[1] == 0 else stats.norm(loc=p[0], scale=p[1])
    elif name == "uniform":
        _require(key, p[1] >= p[0], "high must be >= low")
        frozen = Constant(p[0]) if p[1] == p[0] else stats.uniform(loc=p[0], scale=p[1] - p[0])
    elif name == "lognormal":
        _require(key, p[0] > 0 and p[1] >= 1, "median must be > 0 and gsd >= 1")
        frozen = Constant(p[0]) if p[1] == 1 else stats.lognorm(s=math.log(p[1]), scale=p[0])
    else:                                   # triangular
        low, mode, high = p
        _require(key, low <= mode <= high, "needs low <= mode <= high")
        frozen = (Constant(low) if high == low
                  else stats.triang(c=(mode - low) / (high - low), loc=low, scale=high - low))
    return Distribution(frozen, text, spelled)


def distributions(inputs: Mapping[str, Any]) -> dict[str, Distribution]:
    """Every input's Distribution; ValueError listing every bad one."""
    if not isinstance(inputs, Mapping) or not inputs:
        raise ValueError(f"inputs must be a non-empty dict of key -> distribution (got {inputs!r})")
    out, problems = {}, []
    for key, spec in inputs.items():
        try:
            out[key] = distribution(key, spec)
        except ValueError as err:
            problems.append(str(err))
    if problems:
        raise ValueError("; ".join(problems))
    return out


def unit_sample(n: int, dimensions: int, method: str = "lhs", seed: Any = None) -> np.ndarray:
    """`n` points in [0, 1)^dimensions by `method` (see the module docstring)."""
    import warnings

    from scipy.stats import qmc

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number >= 1 (got {n!r})")
    if method == "lhs":
        return qmc.LatinHypercube(d=dimensions, seed=seed).random(n)
    if method == "sobol":
        with warnings.catch_warnings():     # n not a power of 2: still a valid (less balanced) sample
            warnings.simplefilter("ignore", UserWarning)
            return qmc.Sobol(d=dimensions, scramble=True, seed=seed).random(n)
    if method == "random":
        return np.random.default_rng(seed).random((n, dimensions))
    raise ValueError(f"method must be one of {', '.join(METHODS)} (got {method!r})")


def sample(dists: Mapping[str, Distribution], n: int, method: str = "lhs", seed: Any = None) -> dict[str, np.ndarray]:
    """`n` values of every input, drawn jointly (independent inputs) by `method`."""
    points = unit_sample(n, len(dists), method, seed)
    return {key: dist.ppf(points[:, i]) for i, (key, dist) in enumerate(dists.items())}


def _describe_frozen(frozen: Any) -> str:
    dist = getattr(frozen, "dist", None)
    name = getattr(dist, "name", type(frozen).__name__)
    args = ", ".join(f"{a:g}" if _is_number(a) else repr(a) for a in getattr(frozen, "args", ()))
    kwds = ", ".join(f"{k}={v:g}" if _is_number(v) else f"{k}={v!r}" for k, v in getattr(frozen, "kwds", {}).items())
    return f"scipy.stats.{name}({', '.join(t for t in (args, kwds) if t)})"


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _require(key: str, condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"{key}: {message}")


def _spellings() -> str:
    return "; ".join(f"[{name!r}, {', '.join(params)}]" for name, params in SPELLINGS.items())
