"""The figures of studies and outcome statistics (matplotlib `Figure`s, no pyplot): the exceedance curve,
the distribution of an outcome over a study's members, the fan of dilution against distance, and the
sensitivity indices as bars. Every drawn artist has a `gid`, so tests can inspect a figure."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

_LABELS = {"mz_dilution": "dilution at the mixing-zone boundary",
           "mz_concentration": "concentration at the mixing-zone boundary",
           "dilution": "dilution at the end of the near field", "rise_height": "rise height",
           "source_distance": "distance from the source at the end of the near field"}


def label(column: str, unit: str = "") -> str:
    text = _LABELS.get(column, column.replace("_", " "))
    return f"{text} ({unit})" if unit and unit != "1" else text


def _figure(ax: Any, size: tuple[float, float]) -> tuple["Figure", Any]:
    from ..plots import _register_notebook_display

    _register_notebook_display()
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def exceedance_figure(table: "pd.DataFrame", column: str, unit: str, threshold: float | None, what: str,
                      ax: Any = None) -> "Figure":
    """Fraction of `what` at or below each value (a step curve), the threshold as a vertical line."""
    fig, ax = _figure(ax, (6.4, 4.2))
    values, below = table["value"].to_numpy(float), table["fraction_at_or_below"].to_numpy(float)
    ax.step(values, below, where="post", color="tab:blue", gid="exceedance")
    if values.size and np.all(values > 0) and values.max() > 10 * values.min():
        ax.set_xscale("log")
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", linestyle="--", gid="threshold", label=f"threshold {threshold:g}")
        ax.legend(loc="lower right")
    ax.set_xlabel(label(column, unit))
    ax.set_ylabel(f"fraction of {what} at or below")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Exceedance curve ({len(values)} distinct values)")
    return fig


def distribution_figure(values: np.ndarray, column: str, unit: str, quantiles: dict[float, float],
                        ax: Any = None) -> "Figure":
    """Histogram of an outcome over the members, with the quantiles as vertical lines."""
    fig, ax = _figure(ax, (6.4, 4.2))
    values = values[np.isfinite(values)]
    if values.size:
        ax.hist(values, bins=min(40, max(5, int(np.sqrt(values.size)))), color="tab:blue", alpha=0.75,
                gid="histogram")
    for q, value in quantiles.items():
        if np.isfinite(value):
            ax.axvline(value, color="tab:red" if q != 0.5 else "black", linestyle="--" if q != 0.5 else "-",
                       gid=f"quantile_{q:g}", label=f"{100 * q:g}th percentile {value:.4g}")
    if quantiles:
        ax.legend(loc="upper right", fontsize="small")
    ax.set_xlabel(label(column, unit))
    ax.set_ylabel("members")
    ax.set_title(f"Distribution over {values.size} members")
    return fig


def fan_figure(fan: "pd.DataFrame", mixing_zone: float | None, ax: Any = None) -> "Figure":
    """Median dilution against distance with the 5-95 % and 25-75 % bands across members."""
    fig, ax = _figure(ax, (6.4, 4.2))
    d = fan["distance"].to_numpy(float)
    ax.fill_between(d, fan["p05"], fan["p95"], color="tab:blue", alpha=0.2, label="5–95 %", gid="band_90")
    ax.fill_between(d, fan["p25"], fan["p75"], color="tab:blue", alpha=0.35, label="25–75 %", gid="band_50")
    ax.plot(d, fan["p50"], color="tab:blue", label="median", gid="median")
    if mixing_zone:
        ax.axvline(mixing_zone, color="tab:red", linestyle="-.", label=f"mixing zone ({mixing_zone:g} m)",
                   gid="mixing_zone")
    positive = fan["p05"].to_numpy(float)
    if np.any(np.isfinite(positive)) and np.nanmin(positive) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("horizontal distance from the source (m)")
    ax.set_ylabel("dilution")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(True, alpha=0.3)
    ax.set_title("Dilution against distance across members")
    return fig


def indices_figure(indices: "pd.DataFrame", method: str, output: str, ax: Any = None) -> "Figure":
    """Sobol first-order and total indices (with confidence intervals), or Morris mu* and sigma, as bars."""
    fig, ax = _figure(ax, (6.4, 0.6 * len(indices) + 2.0))
    names = indices["input"].tolist()
    y = np.arange(len(names))
    if method == "sobol":
        pairs = (("S1", "S1_conf", "first order", -0.2), ("ST", "ST_conf", "total", 0.2))
    else:
        pairs = (("mu_star", "mu_star_conf", "μ*", -0.2), ("sigma", None, "σ", 0.2))
    for column, conf, text, shift in pairs:
        err = indices[conf].to_numpy(float) if conf else None
        ax.barh(y + shift, indices[column].to_numpy(float), height=0.4, xerr=err, label=text, gid=column,
                capsize=3)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_xlabel("index" if method == "sobol" else label(output))
    ax.set_title(f"{'Sobol' if method == 'sobol' else 'Morris'} sensitivity of {label(output)}")
    ax.grid(True, axis="x", alpha=0.3)
    return fig
