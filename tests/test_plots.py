"""`Result.plot()`: the figures' content (axes, labels, lines, plotted data, scales), not only that they exist.

Reference cases, read in place from ../shared/reference: 01 (single port near the bottom, ft / ppm, a 60 ppm
isopleth, no current), 07 (8-port diffuser with the Brooks far field out to a 3000 m mixing zone) and
example_timeseries (13 hourly cases).
"""
from __future__ import annotations

import io
import math

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is not installed (needed for Result.plot)")

import vp_jupyter as vp  # noqa: E402
from conftest import reference_case  # noqa: E402
from vp_jupyter.units import from_si, parse_unit  # noqa: E402

FT_PER_M = from_si(1.0, parse_unit("ft", "length"))
VIEW_TITLES = ["Elevation (side view)", "Plan view", "Dilution", "Concentration"]

_RESULTS: dict[str, "vp.Result"] = {}


def result_of(name: str) -> "vp.Result":
    if name not in _RESULTS:
        _RESULTS[name] = vp.run(reference_case(name), store=False)
    return _RESULTS[name]


def axes_by_title(fig) -> dict:
    return {ax.get_title(): ax for ax in fig.axes}


def line(ax, gid: str):
    found = [artist for artist in ax.lines if artist.get_gid() == gid]
    assert len(found) == 1, f"{gid}: {[a.get_gid() for a in ax.lines]}"
    return found[0]


def gids(ax) -> list[str]:
    return sorted(artist.get_gid() for artist in ax.lines)


def case_rows(result: "vp.Result", number: int):
    table = result.plume_in_case_units()
    return table[table.case == number].reset_index(drop=True), result.plume[result.plume.case == number].reset_index(drop=True)


# -- case 01: single port, feet and ppm, an isopleth, no current --------------------------------------------

@pytest.fixture(scope="module")
def fig01():
    return result_of("01_readme_single_port").plot()


def test_four_views_with_their_titles(fig01) -> None:
    assert [ax.get_title() for ax in fig01.axes] == VIEW_TITLES
    assert fig01.get_suptitle() == "01_readme_single_port — case 1 of 1"


def test_elevation_of_case_01(fig01) -> None:
    result = result_of("01_readme_single_port")
    ax = axes_by_title(fig01)["Elevation (side view)"]
    cu, si = case_rows(result, 1)
    assert ax.get_xlabel() == "Horizontal distance from source (ft)"
    assert ax.get_ylabel() == "Depth (ft)"                # the diffuser depth unit
    assert ax.yaxis_inverted()
    assert gids(ax) == sorted(["centreline", "boundary_upper", "boundary_lower", "isopleth_upper",
                               "isopleth_lower", "surface", "bottom", "mixing_zone"])
    centre = line(ax, "centreline")
    np.testing.assert_allclose(centre.get_ydata(), cu.depth, rtol=1e-12)
    np.testing.assert_allclose(centre.get_xdata(), np.hypot(cu.x, cu.y), rtol=1e-12)
    np.testing.assert_allclose(centre.get_xdata(), si.horizontal_distance * FT_PER_M, rtol=1e-9)
    assert centre.get_xdata()[-1] == pytest.approx(12.03, abs=0.01)     # the CLI's final horizontal distance
    # boundary: the two sides are one diameter apart (diameter in m, axes in ft) and centred on the path
    for kind, width in (("boundary", si.diameter), ("isopleth", si.iso_diameter)):
        upper, lower = line(ax, f"{kind}_upper"), line(ax, f"{kind}_lower")
        across = np.hypot((upper.get_xdata() - lower.get_xdata()) / FT_PER_M,
                          (upper.get_ydata() - lower.get_ydata()) / FT_PER_M)
        np.testing.assert_allclose(across, width, rtol=1e-9)
        np.testing.assert_allclose((upper.get_xdata() + lower.get_xdata()) / 2, centre.get_xdata(), atol=1e-9)
        np.testing.assert_allclose((upper.get_ydata() + lower.get_ydata()) / 2, centre.get_ydata(), atol=1e-9)
    assert line(ax, "isopleth_upper").get_linestyle() == "--"
    assert "60 ppm" in line(ax, "isopleth_upper").get_label()
    assert line(ax, "boundary_upper").get_linestyle() == "-"
    assert list(line(ax, "surface").get_ydata()) == [0, 0]
    assert line(ax, "bottom").get_ydata()[0] == pytest.approx(12.0, abs=1e-6)      # 12 ft of water
    assert list(line(ax, "mixing_zone").get_xdata()) == pytest.approx([30.0, 30.0])  # acute MZ: 30 ft
    bottom, top = ax.get_ylim()
    assert top < 0 and bottom > max(12.0, np.nanmax(line(ax, "boundary_lower").get_ydata()))
    assert ax.get_xlim()[1] > 30.0                        # the mixing zone is in view


def test_plan_view_of_case_01(fig01) -> None:
    result = result_of("01_readme_single_port")
    ax = axes_by_title(fig01)["Plan view"]
    cu, si = case_rows(result, 1)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x, east (ft)", "y, north (ft)")
    assert ax.get_aspect() == 1.0
    assert gids(ax) == sorted(["centreline", "boundary_left", "boundary_right", "source"])
    path = line(ax, "centreline")
    np.testing.assert_allclose(path.get_xdata(), cu.x, rtol=1e-12)
    np.testing.assert_allclose(path.get_ydata(), cu.y, rtol=1e-12)
    assert path.get_ydata()[-1] < -12.0                  # discharged at 270 deg: south
    assert (list(line(ax, "source").get_xdata()), list(line(ax, "source").get_ydata())) == ([0.0], [0.0])
    left, right = line(ax, "boundary_left"), line(ax, "boundary_right")
    across = np.hypot(left.get_xdata() - right.get_xdata(), left.get_ydata() - right.get_ydata())
    np.testing.assert_allclose(across, si.diameter * FT_PER_M, rtol=1e-9)
    (circle,) = [p for p in ax.patches if p.get_gid() == "mixing_zone"]
    assert circle.get_radius() == pytest.approx(30.0) and tuple(circle.center) == (0.0, 0.0)
    assert not [t for t in ax.texts if t.get_gid() == "current"]   # no current in case 01: no arrow
    left_lim, right_lim = ax.get_xlim()
    assert left_lim <= -30.0 and right_lim >= 30.0       # the mixing-zone circle is in view


def test_dilution_and_concentration_of_case_01(fig01) -> None:
    result = result_of("01_readme_single_port")
    axes = axes_by_title(fig01)
    cu, si = case_rows(result, 1)
    ax = axes["Dilution"]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert ax.get_xlabel() == "Horizontal distance from source (ft)"
    assert gids(ax) == ["cl_dilution", "dilution", "mixing_zone"]       # no far field in case 01
    np.testing.assert_allclose(line(ax, "dilution").get_ydata(), si.dilution, rtol=1e-12)
    np.testing.assert_allclose(line(ax, "cl_dilution").get_ydata(), si.cl_dilution, rtol=1e-12)
    np.testing.assert_allclose(line(ax, "dilution").get_xdata(), np.hypot(cu.x, cu.y), rtol=1e-12)
    assert line(ax, "dilution").get_ydata()[-1] == pytest.approx(result.summary().dilution[0])
    ax = axes["Concentration"]
    assert ax.get_ylabel() == "Concentration (ppm)"
    assert gids(ax) == ["concentration", "isopleth", "mixing_zone"]
    np.testing.assert_allclose(line(ax, "concentration").get_ydata(), cu.concentration, rtol=1e-12)
    assert line(ax, "concentration").get_ydata()[0] == pytest.approx(8300.0)     # effluent, ppm
    assert list(line(ax, "isopleth").get_ydata()) == pytest.approx([60.0, 60.0])   # the 60 ppm isopleth
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    assert low < 60.0 and high > 8300.0


# -- case 07: Brooks far field ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fig07():
    return result_of("07_brooks_farfield_4_3").plot()


def test_far_field_points_on_the_dilution_and_concentration_views(fig07) -> None:
    result = result_of("07_brooks_farfield_4_3")
    far = result.farfield_in_case_units()
    assert len(far) == 14
    axes = axes_by_title(fig07)
    ax = axes["Dilution"]
    assert gids(ax) == ["cl_dilution", "dilution", "farfield", "mixing_zone"]
    farfield = line(ax, "farfield")
    np.testing.assert_allclose(farfield.get_ydata(), far.dilution, rtol=1e-12)
    np.testing.assert_allclose(farfield.get_xdata(), np.hypot(far.x, far.y), rtol=1e-12)   # metres, source at 0
    assert farfield.get_xdata()[-1] > 3000.0 and farfield.get_ydata()[-1] == pytest.approx(1252.47, rel=1e-4)
    assert ax.get_yscale() == "log"
    assert ax.get_xscale() == "symlog"       # near field (20 m) and far field (3 km) both readable
    assert list(line(ax, "mixing_zone").get_xdata()) == pytest.approx([3000.0, 3000.0])
    assert ax.get_xlim()[1] >= farfield.get_xdata()[-1]
    ax = axes["Concentration"]
    assert gids(ax) == ["concentration", "farfield", "mixing_zone"]      # isopleth 0: no isopleth line
    np.testing.assert_allclose(line(ax, "farfield").get_ydata(), far.concentration, rtol=1e-12)   # ppm
    assert ax.get_ylabel() == "Concentration (ppm)"


def test_far_field_track_current_and_focused_elevation_of_case_07(fig07) -> None:
    result = result_of("07_brooks_farfield_4_3")
    far = result.farfield
    axes = axes_by_title(fig07)
    ax = axes["Plan view"]
    assert gids(ax) == sorted(["centreline", "boundary_left", "boundary_right", "farfield", "farfield_left",
                               "farfield_right", "source"])
    np.testing.assert_allclose(line(ax, "farfield").get_xdata(), far.x, rtol=1e-12)
    np.testing.assert_allclose(line(ax, "farfield").get_ydata(), far.y, rtol=1e-12)
    left, right = line(ax, "farfield_left"), line(ax, "farfield_right")
    np.testing.assert_allclose(np.hypot(left.get_xdata() - right.get_xdata(), left.get_ydata() - right.get_ydata()),
                               far.width, rtol=1e-9)
    (arrow,) = [t for t in ax.texts if t.get_gid() == "current"]
    start, end = np.asarray(arrow.xyann), np.asarray(arrow.xy)       # offsets in points around one anchor
    direction = math.degrees(math.atan2(*(end - start)[::-1]))
    assert direction == pytest.approx(result.cases.port_current_dir[1], abs=1e-9)   # 0 deg: towards east
    assert any("0.15 m/s" in t.get_text() for t in ax.texts)
    (circle,) = [p for p in ax.patches if p.get_gid() == "mixing_zone"]
    assert circle.get_radius() == pytest.approx(3000.0)
    ax = axes["Elevation (side view)"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Horizontal distance from source (m)", "Depth (m)")
    assert gids(ax) == sorted(["centreline", "boundary_upper", "boundary_lower", "surface", "bottom",
                               "mixing_zone"])   # isopleth factor 1 throughout: no isopleth boundary
    assert list(line(ax, "mixing_zone").get_xdata()) == pytest.approx([3000.0, 3000.0])
    # the 3000 m mixing zone would squash a 20 m plume: the view stays on the plume and says so
    assert ax.get_xlim()[1] < 100.0
    assert any("3000 m" in t.get_text() for t in ax.texts if t.get_gid() == "note")
    centre = line(ax, "centreline")
    cu, _ = case_rows(result, 1)
    np.testing.assert_allclose(centre.get_ydata(), cu.depth, rtol=1e-12)
    assert line(ax, "bottom").get_ydata()[0] == pytest.approx(30.0)


# -- mixed units: depth in ft, plume x / y in m, diameter in inches -----------------------------------------

def test_mixed_units_keep_the_geometry_true() -> None:
    result = result_of("sejpa_dec2013_maxbrine")
    fig = result.plot()
    axes = axes_by_title(fig)
    cu, si = case_rows(result, 1)
    ax = axes["Elevation (side view)"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Horizontal distance from source (m)", "Depth (ft)")
    centre = line(ax, "centreline")
    np.testing.assert_allclose(centre.get_ydata(), cu.depth, rtol=1e-12)
    np.testing.assert_allclose(centre.get_xdata(), np.hypot(cu.x, cu.y), rtol=1e-12)
    upper, lower = line(ax, "boundary_upper"), line(ax, "boundary_lower")
    # x in m, depth in ft: the two sides are one diameter (SI) apart once both axes are back in metres
    across = np.hypot(upper.get_xdata() - lower.get_xdata(), (upper.get_ydata() - lower.get_ydata()) / FT_PER_M)
    np.testing.assert_allclose(across, si.diameter, rtol=1e-9)
    assert line(ax, "bottom").get_ydata()[0] == pytest.approx(140.0)
    # the far field ran but wrote no row (its memo says why): no far-field line, a linear distance axis
    assert result.farfield_outputs[0].was_run and result.farfield.empty
    for title in ("Dilution", "Concentration"):
        assert "farfield" not in gids(axes[title]) and axes[title].get_xscale() == "linear"
    assert axes["Concentration"].get_ylabel() == "Concentration (ppb)"
    plan = axes["Plan view"]
    assert plan.get_xlabel() == "x, east (m)"
    left, right = line(plan, "boundary_left"), line(plan, "boundary_right")
    np.testing.assert_allclose(np.hypot(left.get_xdata() - right.get_xdata(), left.get_ydata() - right.get_ydata()),
                               si.diameter, rtol=1e-9)
    # a 2000 m mixing zone around a 7 m plume: the circle is drawn, the view stays on the plume
    (circle,) = [p for p in plan.patches if p.get_gid() == "mixing_zone"]
    assert circle.get_radius() == pytest.approx(2000.0)
    fig.savefig(io.BytesIO(), format="png")    # drawing applies the equal aspect to the limits
    assert plan.get_xlim()[1] < 200.0
    assert any("2000 m" in t.get_text() for t in plan.texts if t.get_gid() == "note")


# -- time series ---------------------------------------------------------------------------------------------

def test_time_series_case_number_selects_the_case() -> None:
    result = result_of("example_timeseries")
    assert result.case_count == 13
    fig = result.plot(case=3)
    assert fig.get_suptitle() == "example_timeseries — case 3 of 13 (t = 2 h)"
    cu, si = case_rows(result, 3)
    first, _ = case_rows(result, 1)
    axes = axes_by_title(fig)
    centre = line(axes["Elevation (side view)"], "centreline")
    np.testing.assert_allclose(centre.get_ydata(), cu.depth, rtol=1e-12)
    assert len(centre.get_ydata()) == len(cu) and not np.array_equal(cu.depth, first.depth)
    np.testing.assert_allclose(line(axes["Dilution"], "dilution").get_ydata(), si.dilution, rtol=1e-12)
    assert line(axes["Dilution"], "dilution").get_ydata()[-1] == pytest.approx(result.summary().dilution[2])
    np.testing.assert_allclose(line(axes["Concentration"], "concentration").get_ydata(), cu.concentration,
                               rtol=1e-12)
    assert list(line(axes["Dilution"], "mixing_zone").get_xdata()) == pytest.approx([10.0, 10.0])
    (arrow,) = [t for t in axes["Plan view"].texts if t.get_gid() == "current"]
    start, end = np.asarray(arrow.xyann), np.asarray(arrow.xy)
    assert math.degrees(math.atan2(*(end - start)[::-1])) == pytest.approx(result.cases.port_current_dir[3])


def test_bad_case_number_or_view_is_refused() -> None:
    result = result_of("example_timeseries")
    for bad in (0, 14):
        with pytest.raises(ValueError, match="case must be between 1 and 13"):
            result.plot(case=bad)
    with pytest.raises(TypeError, match="case number"):
        result.plot(case="2")
    with pytest.raises(ValueError, match="unknown view 'profile'"):
        result.plot(views=("elevation", "profile"))
    with pytest.raises(ValueError, match="no view"):
        result.plot(views=())


# -- figures, axes, stored results ---------------------------------------------------------------------------

def test_one_view_and_views_into_given_axes() -> None:
    from matplotlib.figure import Figure

    result = result_of("01_readme_single_port")
    single = result.plot(views="dilution")
    assert [ax.get_title() for ax in single.axes] == ["Dilution"]
    alias = result.plot(views="trajectory")
    assert [ax.get_title() for ax in alias.axes] == ["Elevation (side view)"]
    mine = Figure()
    left, right = mine.subplots(1, 2)
    assert result.plot(views=("plan", "concentration"), ax=[left, right]) is mine
    assert (left.get_title(), right.get_title()) == ("Plan view — case 1", "Concentration — case 1")
    assert gids(right) == ["concentration", "isopleth", "mixing_zone"]
    grid = Figure().subplots(2, 2)                # a 2 x 2 array of axes, as plt.subplots(2, 2) gives
    result.plot(ax=grid)
    assert [a.get_title() for a in grid.ravel()] == [f"{t} — case 1" for t in VIEW_TITLES]
    with pytest.raises(ValueError, match="need as many axes"):
        result.plot(views=("plan", "dilution"), ax=left)


def test_figures_render_without_pyplot() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = result_of("07_brooks_farfield_4_3").plot()
    assert plt.get_fignums() == before          # not registered with pyplot: nothing left open, shown once
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")           # renders with Agg, no display needed
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_stored_result_plots_the_same_data() -> None:
    original = vp.run(reference_case("07_brooks_farfield_4_3"))     # recorded in this test's own store
    loaded = vp.load(original.run_id)
    for view in ("elevation", "plan", "dilution", "concentration"):
        (a,), (b,) = original.plot(views=view).axes, loaded.plot(views=view).axes
        assert gids(a) == gids(b)
        for first, second in zip(a.lines, b.lines):
            np.testing.assert_array_equal(first.get_xydata(), second.get_xydata())


def test_html_repr_stays_compact_and_mentions_plot() -> None:
    text = result_of("example_timeseries")._repr_html_()
    assert "<code>.plot()</code>" in text and "13 case(s)" in text
    assert text.count("<tr>") == 11 and len(text) < 4000


def test_a_returned_figure_displays_as_png_in_ipython_without_pyplot() -> None:
    """A notebook that only calls `result.plot()` (never pyplot) must get an image, not `<Figure size …>`."""
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell", reason="IPython is not installed")
    from matplotlib.figure import Figure

    existed = interactiveshell.InteractiveShell.initialized()
    shell = interactiveshell.InteractiveShell.instance()
    png = shell.display_formatter.formatters["image/png"]
    previous = png.type_printers.get(Figure)
    png.type_printers.pop(Figure, None)
    try:
        fig = result_of("01_readme_single_port").plot(views="dilution")
        data, _ = shell.display_formatter.format(fig)
        assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        png.type_printers.pop(Figure, None)
        if previous is not None:
            png.type_printers[Figure] = previous
        if not existed:
            interactiveshell.InteractiveShell.clear_instance()
