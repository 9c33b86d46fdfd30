"""The standard Visual Plumes views of one case of a Result, drawn with matplotlib (imported only when plotting).

    fig = result.plot()                                 # case 1: the four views on a 2 x 2 figure
    fig = result.plot(case=3, views="dilution")         # one view of case 3
    result.plot(views=("elevation", "plan"), ax=[ax1, ax2])   # into axes of your own figure

Views (every one in the units the case was given in, as `Result.plume_in_case_units()` reports them):

* ``elevation`` — side view: horizontal distance from the source (the plume x / y unit) against depth (the
  diffuser depth unit, axis pointing down): the centre line, the plume boundary (± half the diameter,
  perpendicular to the path in the vertical plane through the source), the isopleth boundary (± half the
  isopleth diameter, dashed) when the isopleth narrows the plume, the surface, the bottom and the acute mixing
  zone as a vertical line.
* ``plan`` — x (east) against y (north), equal scales: the path and its boundary (± half the diameter
  perpendicular to the horizontal direction of travel), the source, the Brooks far-field track when it ran,
  the acute mixing zone as a circle around the source and an arrow showing the ambient current at the port.
* ``dilution`` — average and centre-line dilution against horizontal distance from the source, log scale, with
  the far-field rows when the far field ran and the mixing zone.
* ``concentration`` — concentration (diffuser concentration unit) against horizontal distance, with the far
  field, the mixing zone and, for a concentration isopleth, the isopleth value as a horizontal line; log scale
  when every value is positive.

When the mixing zone lies far beyond everything the case computed (more than `FOCUS_RATIO` times the extent
of the plotted data) a view keeps its line or circle but limits the axes to the data and says in a note
where the mixing zone is, so a 5 m plume is not drawn as a dot next to a 500 m mixing zone.

Every artist drawn from the result has a `gid` (``centreline``, ``boundary_upper``, ``boundary_lower``,
``isopleth_upper``, ``isopleth_lower``, ``surface``, ``bottom``, ``mixing_zone``, ``source``, ``farfield``,
``dilution``, ``cl_dilution``, ``concentration``, ``isopleth``, ``current``), so figures can be inspected.
Figures are made with :class:`matplotlib.figure.Figure`, not pyplot: no GUI backend is needed (Agg), nothing is
left open in pyplot's figure list, and Jupyter shows the returned figure once (in IPython, a PNG display
formatter for Figure is registered when none is, since matplotlib-inline only registers its own once pyplot is
imported).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .results import Result

VIEWS = ("elevation", "plan", "dilution", "concentration")
_ALIASES = {"trajectory": "elevation", "side": "elevation", "plan_view": "plan", "conc": "concentration"}
FOCUS_RATIO = 5.0           # mixing zone beyond this many times the data extent: the axes show the data only
_TITLES = {"elevation": "Elevation (side view)", "plan": "Plan view", "dilution": "Dilution",
           "concentration": "Concentration"}
_COLORS = {"plume": "tab:blue", "isopleth": "tab:purple", "farfield": "tab:orange", "mixing_zone": "tab:red",
           "surface": "tab:cyan", "bottom": "saddlebrown", "source": "black", "current": "tab:green"}


def plot_result(result: "Result", case: int = 1, views: "str | Iterable[str]" = VIEWS, ax: Any = None, *,
                figsize: "tuple[float, float] | None" = None) -> "Figure":
    """Draw the standard Visual Plumes views of case `case` (1-based) of `result`; returns the Figure.

    `views`: one view name or several, from ``elevation`` (alias ``trajectory``), ``plan``, ``dilution``,
    ``concentration``. `ax`: None (a new figure: one view, a row of two or three, or 2 x 2 for four), one
    Axes (one view) or a sequence of Axes, one per view; the figure of the first is returned.
    `figsize`: size of a new figure in inches.
    """
    names = _view_names(views)
    number = _case_number(result, case)
    data = _CaseData.of(result, number)
    if ax is None:
        from matplotlib.figure import Figure

        rows, cols = (2, 2) if len(names) == 4 else (1, len(names))
        fig = Figure(figsize=figsize or (5.6 * cols, 4.4 * rows + 0.4), layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(rows, cols)).ravel())
        fig.suptitle(data.title)
        _register_notebook_display()
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object))) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(names):
            raise ValueError(f"{len(names)} view(s) ({', '.join(names)}) need as many axes; got {len(axes)}")
        fig = axes[0].figure
    for name, target in zip(names, axes):
        _DRAW[name](target, data)
        target.set_title(_TITLES[name] if ax is None else f"{_TITLES[name]} — case {number}")
    return fig


# -- the data of one case, in case units ------------------------------------------------------------------

@dataclass
class _CaseData:
    number: int
    title: str
    depth_label: str                    # diffuser depth unit
    position_label: str                 # plume x / y unit (ft or m)
    concentration_label: str            # diffuser concentration unit
    pos: float                          # SI (m) -> position unit factor
    dep: float                          # SI (m) -> depth unit factor
    source_xy: tuple[float, float]      # position unit
    distance: np.ndarray                # near field: horizontal distance from the source, position unit
    depth: np.ndarray                   # depth unit
    x: np.ndarray                       # position unit
    y: np.ndarray
    dilution: np.ndarray
    cl_dilution: np.ndarray
    concentration: np.ndarray           # concentration unit
    elevation_bounds: dict[str, tuple[np.ndarray, np.ndarray]]   # gid -> (distance, depth)
    plan_bounds: dict[str, tuple[np.ndarray, np.ndarray]]        # gid -> (x, y)
    isopleth_label: str | None          # the isopleth boundary is drawn when set
    concentration_isopleth: float | None   # isopleth value in the concentration unit (concentration type)
    bottom_depth: float | None          # depth unit
    mixing_zone: float | None           # position unit
    ff_distance: np.ndarray             # far field (empty when it did not run): position unit
    ff_x: np.ndarray
    ff_y: np.ndarray
    ff_dilution: np.ndarray
    ff_concentration: np.ndarray        # concentration unit
    current_speed: float                # at the port, SI
    current_label: str                  # "0.15 m/s" in the ambient current-speed unit
    current_dir: float                  # at the port, degrees counter-clockwise from east

    @classmethod
    def of(cls, result: "Result", number: int) -> "_CaseData":
        from .display_units import convert_from_si, position_unit
        from .units import from_si

        case = result.case
        engine = result.engine_cases[number - 1]
        diffuser = engine.diffuser
        output = result.outputs[number - 1]
        si = {name: np.asarray(output.columns[name], dtype=float) for name in output.columns}
        d_units, a_units = case.diffuser_units, case.ambient_units
        depth_unit, pos_unit, conc_unit = d_units["depth"], position_unit(case), d_units["concentration"]
        pos, dep = from_si(1.0, pos_unit), from_si(1.0, depth_unit)
        x0, y0 = diffuser.offset_x, diffuser.offset_y

        # near field, SI geometry first (the two axes of the elevation may have different units)
        dx, dy = si["x"] - x0, si["y"] - y0
        distance_si = np.hypot(dx, dy)
        heading = np.radians(si["horizontal_angle"])
        pitch = np.radians(si["vertical_angle"])
        elevation_bounds = {}
        plan_bounds = {}
        normal_s, normal_up = _elevation_normal(dx, dy, distance_si, heading, pitch)
        width_si = {"boundary": si["diameter"], "isopleth": si["iso_diameter"]}
        for kind, width in width_si.items():
            half = width / 2.0
            elevation_bounds[f"{kind}_upper"] = ((distance_si + normal_s * half) * pos,
                                                 (si["depth"] - normal_up * half) * dep)
            elevation_bounds[f"{kind}_lower"] = ((distance_si - normal_s * half) * pos,
                                                 (si["depth"] + normal_up * half) * dep)
        half = si["diameter"] / 2.0
        left_x, left_y = _continuous(-np.sin(heading), np.cos(heading))
        plan_bounds["boundary_left"] = ((si["x"] + left_x * half) * pos, (si["y"] + left_y * half) * pos)
        plan_bounds["boundary_right"] = ((si["x"] - left_x * half) * pos, (si["y"] - left_y * half) * pos)

        factors = si["isopleth_factor"][np.isfinite(si["isopleth_factor"])]
        isopleth_label = None
        if factors.size and np.any(np.abs(factors - 1.0) > 1e-9):
            value = from_si(diffuser.isopleth, d_units["isopleth"])
            isopleth_label = f"isopleth boundary ({diffuser.isopleth_type} {value:.4g} {d_units['isopleth'].label})"
        concentration_isopleth = None
        if diffuser.isopleth_type == "concentration" and diffuser.isopleth > 0:
            concentration_isopleth = from_si(diffuser.isopleth, conc_unit)

        bottom = engine.ambient.bottom_depth
        mixing_zone = diffuser.acute_mixing_zone
        ff = result.farfield_outputs[number - 1]
        ffc = {name: np.asarray(ff.columns[name], dtype=float) for name in ff.columns}
        ff_left_x, ff_left_y = _track_normals(ffc["x"], ffc["y"])
        ff_half = ffc["width"] / 2.0
        plan_bounds["farfield_left"] = ((ffc["x"] + ff_left_x * ff_half) * pos, (ffc["y"] + ff_left_y * ff_half) * pos)
        plan_bounds["farfield_right"] = ((ffc["x"] - ff_left_x * ff_half) * pos,
                                         (ffc["y"] - ff_left_y * ff_half) * pos)
        port = result.cases.loc[number]
        speed_unit = a_units["current_speed"]
        speed = float(port["port_current_speed"])
        time_h = result.case_times[number - 1] / 3600.0
        title = f"{case.name} — case {number} of {result.case_count}"
        if result.case_count > 1 or time_h:
            title += f" (t = {time_h:g} h)"
        return cls(
            number=number, title=title, depth_label=depth_unit.label, position_label=pos_unit.label,
            concentration_label=conc_unit.label, pos=pos, dep=dep, source_xy=(x0 * pos, y0 * pos),
            distance=distance_si * pos,
            depth=convert_from_si(si["depth"], depth_unit),
            x=convert_from_si(si["x"], pos_unit), y=convert_from_si(si["y"], pos_unit),
            dilution=si["dilution"], cl_dilution=si["cl_dilution"],
            concentration=convert_from_si(si["concentration"], conc_unit),
            elevation_bounds=elevation_bounds, plan_bounds=plan_bounds,
            isopleth_label=isopleth_label, concentration_isopleth=concentration_isopleth,
            bottom_depth=bottom * dep if math.isfinite(bottom) and bottom > 0 else None,
            mixing_zone=mixing_zone * pos if math.isfinite(mixing_zone) and mixing_zone > 0 else None,
            ff_distance=np.hypot(ffc["x"] - x0, ffc["y"] - y0) * pos,
            ff_x=ffc["x"] * pos, ff_y=ffc["y"] * pos, ff_dilution=ffc["dilution"],
            ff_concentration=convert_from_si(ffc["concentration"], conc_unit),
            current_speed=speed, current_label=f"{from_si(speed, speed_unit):.3g} {speed_unit.label}",
            current_dir=float(port["port_current_dir"]))

    @property
    def has_farfield(self) -> bool:
        return self.ff_distance.size > 0

    @property
    def distance_label(self) -> str:
        return f"Horizontal distance from source ({self.position_label})"


def _elevation_normal(dx, dy, distance, heading, pitch) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal of the path in the (horizontal distance from the source, height) plane, per row.

    The path's rate of change there is (cos pitch · (radial unit · heading unit), sin pitch); at the source
    the radial direction is the heading. A path that runs exactly across the radial plane gets (0, 1).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        radial_x = np.where(distance > 0, dx / distance, np.cos(heading))
        radial_y = np.where(distance > 0, dy / distance, np.sin(heading))
    ds = np.cos(pitch) * (radial_x * np.cos(heading) + radial_y * np.sin(heading))
    dz = np.sin(pitch)
    norm = np.hypot(ds, dz)
    flat = ~(norm > 0)
    norm = np.where(flat, 1.0, norm)
    return _continuous(np.where(flat, 0.0, -dz / norm), np.where(flat, 1.0, ds / norm))


def _track_normals(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-hand unit normals of a track of points (the far field: it moves radially away from the origin,
    so a single point takes the radial direction)."""
    if x.size == 0:
        return x.copy(), y.copy()
    if x.size == 1:
        tx, ty = x.copy(), y.copy()
    else:
        tx, ty = np.gradient(x), np.gradient(y)
    norm = np.hypot(tx, ty)
    norm = np.where(norm > 0, norm, np.nan)
    return _continuous(-ty / norm, tx / norm)


def _continuous(nx: np.ndarray, ny: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normals (nx, ny) with each sign chosen to agree with the previous row's, so a boundary stays on its side
    when the direction of travel flips between two written rows (a plume that rose past the vertical)."""
    nx, ny = np.array(nx, dtype=float), np.array(ny, dtype=float)
    for i in range(1, nx.size):
        if nx[i] * nx[i - 1] + ny[i] * ny[i - 1] < 0:
            nx[i], ny[i] = -nx[i], -ny[i]
    return nx, ny


# -- the views ----------------------------------------------------------------------------------------------

def _draw_elevation(ax: "Axes", d: _CaseData) -> None:
    blue, purple = _COLORS["plume"], _COLORS["isopleth"]
    upper, lower = d.elevation_bounds["boundary_upper"], d.elevation_bounds["boundary_lower"]
    ax.fill(np.r_[upper[0], lower[0][::-1]], np.r_[upper[1], lower[1][::-1]], color=blue, alpha=0.12,
            linewidth=0, gid="plume_body")
    ax.plot(d.distance, d.depth, color=blue, linewidth=2, marker=".", label="centre line", gid="centreline")
    ax.plot(*upper, color=blue, linewidth=1, label="plume boundary", gid="boundary_upper")
    ax.plot(*lower, color=blue, linewidth=1, label="_plume boundary", gid="boundary_lower")
    if d.isopleth_label:
        ax.plot(*d.elevation_bounds["isopleth_upper"], color=purple, linestyle="--", linewidth=1,
                label=d.isopleth_label, gid="isopleth_upper")
        ax.plot(*d.elevation_bounds["isopleth_lower"], color=purple, linestyle="--", linewidth=1,
                label="_isopleth boundary", gid="isopleth_lower")
    ax.axhline(0.0, color=_COLORS["surface"], linewidth=1.2, label="surface", gid="surface")
    deepest = [0.0, *np.asarray(upper[1])[np.isfinite(upper[1])], *np.asarray(lower[1])[np.isfinite(lower[1])]]
    if d.bottom_depth is not None:
        ax.axhline(d.bottom_depth, color=_COLORS["bottom"], linewidth=2,
                   label=f"bottom ({d.bottom_depth:.4g} {d.depth_label})", gid="bottom")
        deepest.append(d.bottom_depth)
    finite_distances = [*d.distance[np.isfinite(d.distance)],
                        *(v for key in ("boundary_upper", "boundary_lower")
                          for v in d.elevation_bounds[key][0] if math.isfinite(v))]
    _mixing_zone_line(ax, d, max(finite_distances, default=0.0))
    top, low = min(deepest), max(deepest)
    pad = 0.04 * (low - top or 1.0)
    if d.bottom_depth is not None:                # the seabed, shaded down to the lower edge of the view
        ax.axhspan(d.bottom_depth, low + pad, color=_COLORS["bottom"], alpha=0.15, linewidth=0, gid="seabed")
    ax.set_ylim(low + pad, top - pad)             # depth grows downwards
    ax.set_xlabel(d.distance_label)
    ax.set_ylabel(f"Depth ({d.depth_label})")
    ax.legend(fontsize="x-small", loc="best", framealpha=0.85)


def _draw_plan(ax: "Axes", d: _CaseData) -> None:
    from matplotlib.patches import Circle

    blue = _COLORS["plume"]
    ax.plot(d.x, d.y, color=blue, linewidth=2, marker=".", label="plume path", gid="centreline")
    ax.plot(*d.plan_bounds["boundary_left"], color=blue, linewidth=1, label="plume boundary",
            gid="boundary_left")
    ax.plot(*d.plan_bounds["boundary_right"], color=blue, linewidth=1, label="_plume boundary",
            gid="boundary_right")
    if d.has_farfield:
        orange = _COLORS["farfield"]
        ax.plot(d.ff_x, d.ff_y, color=orange, marker="o", markersize=3, linewidth=1,
                label="far field (Brooks)", gid="farfield")
        left, right = d.plan_bounds["farfield_left"], d.plan_bounds["farfield_right"]
        ax.plot(*left, color=orange, linewidth=0.8, linestyle=":", label="far-field width", gid="farfield_left")
        ax.plot(*right, color=orange, linewidth=0.8, linestyle=":", label="_far-field width", gid="farfield_right")
        ax.fill(np.r_[left[0], right[0][::-1]], np.r_[left[1], right[1][::-1]], color=orange, alpha=0.1,
                linewidth=0, gid="farfield_body")
    ax.plot([d.source_xy[0]], [d.source_xy[1]], linestyle="none", marker="*", markersize=12,
            color=_COLORS["source"], label="source", gid="source")
    points_x = np.r_[d.source_xy[0], d.x, d.ff_x, *(bounds[0] for bounds in d.plan_bounds.values())]
    points_y = np.r_[d.source_xy[1], d.y, d.ff_y, *(bounds[1] for bounds in d.plan_bounds.values())]
    keep = np.isfinite(points_x) & np.isfinite(points_y)
    points_x, points_y = points_x[keep], points_y[keep]
    extent = float(np.max(np.hypot(points_x - d.source_xy[0], points_y - d.source_xy[1]), initial=0.0))
    if d.mixing_zone is not None:
        circle = Circle(d.source_xy, d.mixing_zone, fill=False, edgecolor=_COLORS["mixing_zone"],
                        linestyle="--", linewidth=1.2, label=f"mixing zone ({d.mixing_zone:.4g} {d.position_label})",
                        gid="mixing_zone")
        if d.mixing_zone > FOCUS_RATIO * extent and extent > 0:
            ax.add_artist(circle)       # drawn, but the data limits (and so the view) stay on the plume
            _note(ax, f"mixing zone: radius {d.mixing_zone:.4g} {d.position_label} (beyond the view)")
        else:
            ax.add_patch(circle)
    if d.current_speed > 0 and math.isfinite(d.current_dir):
        _current_arrow(ax, d)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(f"x, east ({d.position_label})")
    ax.set_ylabel(f"y, north ({d.position_label})")
    ax.legend(fontsize="x-small", loc="best", framealpha=0.85)


def _draw_dilution(ax: "Axes", d: _CaseData) -> None:
    ax.plot(d.distance, d.dilution, color=_COLORS["plume"], linewidth=2, marker=".",
            label="average dilution (near field)", gid="dilution")
    ax.plot(d.distance, d.cl_dilution, color=_COLORS["plume"], linewidth=1, linestyle="--",
            label="centre-line dilution (near field)", gid="cl_dilution")
    if d.has_farfield:
        ax.plot(d.ff_distance, d.ff_dilution, color=_COLORS["farfield"], marker="o", markersize=3, linewidth=1,
                label="dilution (far field, Brooks)", gid="farfield")
    ax.set_yscale("log")
    _mixing_zone_line(ax, d, _max_finite(d.distance, d.ff_distance))
    _distance_scale(ax, d)
    ax.set_ylabel("Dilution (volumetric, -)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small", loc="best", framealpha=0.85)


def _draw_concentration(ax: "Axes", d: _CaseData) -> None:
    ax.plot(d.distance, d.concentration, color=_COLORS["plume"], linewidth=2, marker=".",
            label="concentration (near field)", gid="concentration")
    values = [d.concentration]
    if d.has_farfield:
        ax.plot(d.ff_distance, d.ff_concentration, color=_COLORS["farfield"], marker="o", markersize=3,
                linewidth=1, label="concentration (far field, Brooks)", gid="farfield")
        values.append(d.ff_concentration)
    if d.concentration_isopleth is not None:
        ax.axhline(d.concentration_isopleth, color=_COLORS["isopleth"], linestyle="--", linewidth=1.2,
                   label=f"isopleth ({d.concentration_isopleth:.4g} {d.concentration_label})", gid="isopleth")
        values.append(np.array([d.concentration_isopleth]))
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if finite.size and np.all(finite > 0):
        ax.set_yscale("log")
    _mixing_zone_line(ax, d, _max_finite(d.distance, d.ff_distance))
    _distance_scale(ax, d)
    ax.set_ylabel(f"Concentration ({d.concentration_label})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small", loc="best", framealpha=0.85)


_DRAW = {"elevation": _draw_elevation, "plan": _draw_plan, "dilution": _draw_dilution,
         "concentration": _draw_concentration}


# -- helpers ------------------------------------------------------------------------------------------------

def _register_notebook_display() -> None:
    """In IPython / Jupyter, make a returned Figure display as a PNG even if pyplot was never imported.

    matplotlib-inline registers its Figure formatter when pyplot loads the inline backend; a notebook that only
    calls `result.plot()` never does, and would show `<Figure size …>`. An existing formatter (inline backend
    active, or the user's own) is left alone.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None) or {}
    png = formatters.get("image/png")
    if png is None:
        return
    from matplotlib.figure import Figure

    try:
        png.lookup_by_type(Figure)
        return
    except KeyError:
        pass
    from IPython.core.pylabtools import print_figure

    png.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def _mixing_zone_line(ax: "Axes", d: _CaseData, extent: float) -> None:
    """The acute mixing zone as a vertical line; axes limited to the data when it lies far beyond them."""
    if d.mixing_zone is None:
        return
    left, right = ax.get_xlim()
    ax.axvline(d.mixing_zone, color=_COLORS["mixing_zone"], linestyle="-.", linewidth=1.2,
               label=f"mixing zone ({d.mixing_zone:.4g} {d.position_label})", gid="mixing_zone")
    if extent > 0 and d.mixing_zone > FOCUS_RATIO * extent:
        ax.set_xlim(left, right)
        _note(ax, f"mixing zone at {d.mixing_zone:.4g} {d.position_label} (beyond the view) →")


def _distance_scale(ax: "Axes", d: _CaseData) -> None:
    """Distance axis: linear, or — when the far field reaches more than FOCUS_RATIO times as far as the near
    field — linear over the near field and logarithmic beyond it (symlog), so both stay readable."""
    near = _max_finite(d.distance)
    if d.has_farfield and near > 0 and _max_finite(d.ff_distance) > FOCUS_RATIO * near:
        ax.set_xscale("symlog", linthresh=near, linscale=1.0)
        ax.set_xlim(left=0.0)
        ax.set_xlabel(f"{d.distance_label}; linear to {near:.3g}, then logarithmic")
    else:
        ax.set_xlabel(d.distance_label)


def _note(ax: "Axes", text: str) -> None:
    ax.text(0.99, 0.01, text, transform=ax.transAxes, ha="right", va="bottom", fontsize="small",
            color=_COLORS["mixing_zone"], gid="note")


def _current_arrow(ax: "Axes", d: _CaseData, length: float = 36.0) -> None:
    """An arrow in the lower-left corner pointing where the ambient current at the port goes (screen-true angle:
    both ends are offsets in points from one anchor), labelled with its speed in the case's current-speed unit."""
    from matplotlib.text import OffsetFrom

    angle = math.radians(d.current_dir)
    half_x, half_y = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
    anchor = OffsetFrom(ax, (0.1, 0.2), unit="points")
    ax.annotate("", xy=(half_x, half_y), xycoords=anchor, xytext=(-half_x, -half_y), textcoords=anchor,
                arrowprops={"arrowstyle": "-|>", "color": _COLORS["current"], "linewidth": 1.6},
                annotation_clip=False, gid="current")
    ax.text(0.02, 0.02, f"current {d.current_label}", transform=ax.transAxes, ha="left", va="bottom",
            fontsize="small", color=_COLORS["current"], gid="current_label")


def _max_finite(*arrays: np.ndarray) -> float:
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else 0.0


def _view_names(views: "str | Iterable[str]") -> list[str]:
    names = [views] if isinstance(views, str) else list(views)
    if not names:
        raise ValueError(f"no view asked for; choose from {', '.join(VIEWS)}")
    out = []
    for name in names:
        key = _ALIASES.get(str(name).lower(), str(name).lower())
        if key not in VIEWS:
            raise ValueError(f"unknown view {name!r}; choose from {', '.join(VIEWS)} (or 'trajectory')")
        out.append(key)
    return out


def _case_number(result: "Result", case: Any) -> int:
    if isinstance(case, bool) or not isinstance(case, (int, np.integer)):
        raise TypeError(f"case must be a case number (1 to {result.case_count}), got {case!r}")
    if not 1 <= int(case) <= result.case_count:
        raise ValueError(f"case must be between 1 and {result.case_count} (got {case})")
    return int(case)
