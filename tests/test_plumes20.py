"""TRwtp (144 hourly cases with tidal buildup) against the original Visual Plumes program (Plumes20).

The oracle is ../shared/reference/plumes20/trwtp.json, the parsed text output of Plumes20 for the same
inputs as ../shared/reference/cases/trwtp.json. The reference Python port reaches a median final-dilution
difference of 0.03 %, 2.0 % at worst, and the same terminal status in 134 of 144 cases
(plumes20/COMPARISON.md); with the spec §13 "follow the original program" decisions this project aims at
every case within 0.5 % and every status equal.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

import vp_jupyter as vp

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
PLUMES20 = REFERENCE / "plumes20" / "trwtp.json"
pytestmark = pytest.mark.skipif(not PLUMES20.is_file(),
                                reason=f"original-program output not found at {PLUMES20}")

# Plumes20 plume table columns (plumes20/trwtp.json "plume_columns")
DEPTH, DILUTION, X, Y = 0, 9, 10, 11
FT = 3.2808
# row-writing differences COMPARISON.md leaves unexplained; they do not change any value
IGNORED = ("merging", "begin overlap", "end overlap")


def terminal_status(text: str) -> str:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return ", ".join(p for p in parts if p not in IGNORED and not p.startswith("matched energy"))


def plumes20_final_status(case: dict) -> str:
    """Plumes20 prints "Step N Isopleth closed…" as a message and row N without that status."""
    status = case["rows"][-1]["status"]
    if case.get("isopleth_closed_step") is not None and "isopleth closed" not in status:
        status = f"{status}, isopleth closed" if status else "isopleth closed"
    return terminal_status(status)


def test_trwtp_final_rows_match_the_original_program(capsys) -> None:
    original = json.loads(PLUMES20.read_text())
    result = vp.run(REFERENCE / "cases" / "trwtp.json")
    assert result.case_count == original["case_count"] == 144
    finals = result.plume.groupby("case").tail(1).set_index("case")
    records = []
    for case in original["cases"]:
        ours = finals.loc[case["case"]]
        last = case["rows"][-1]
        theirs = last["values"]
        records.append({
            "case": case["case"],
            "dilution_rel": abs(ours["dilution"] - theirs[DILUTION]) / theirs[DILUTION],
            "depth_ft": (ours["depth"] * FT, theirs[DEPTH]),
            "x_ft": (ours["x"] * FT, theirs[X]),
            "y_ft": (ours["y"] * FT, theirs[Y]),
            "dilution": (ours["dilution"], theirs[DILUTION]),
            "step": (int(ours["step"]), last["step"]),
            "status": (terminal_status(ours["status"]), plumes20_final_status(case)),
        })
    worst = sorted(records, key=lambda r: r["dilution_rel"], reverse=True)[:5]
    table = ["case  step ours/P20   dilution ours/P20    rel.diff  status ours | P20"]
    table += [f"{r['case']:>4}  {r['step'][0]:>4}/{r['step'][1]:<4}  {r['dilution'][0]:9.3f}/{r['dilution'][1]:<9.3f}"
              f"  {r['dilution_rel']:8.2e}  {r['status'][0]} | {r['status'][1]}" for r in worst]
    with capsys.disabled():
        print("\nTRwtp vs Plumes20, worst five final dilutions:\n" + "\n".join(table))

    relative = [r["dilution_rel"] for r in records]
    assert statistics.median(relative) <= 0.001
    assert max(relative) <= 0.005, table
    same_status = [r for r in records if r["status"][0] == r["status"][1]]
    assert len(same_status) == 144, [r for r in records if r["status"][0] != r["status"][1]][:5]
    assert all(r["step"][0] == r["step"][1] for r in records)
    # positions agree to the printed precision scale (COMPARISON.md: the port is within 0.45 ft)
    for r in records:
        for key in ("depth_ft", "x_ft", "y_ft"):
            ours, theirs = r[key]
            assert abs(ours - theirs) <= max(0.005 * abs(theirs), 0.05), (r["case"], key, ours, theirs)


def test_trwtp_tidal_buildup_matches_the_original_program() -> None:
    """Plumes20 prints 'Highest buildup of concentration: 0.00002126' (kg/kg)."""
    original = json.loads(PLUMES20.read_text())
    result = vp.run(REFERENCE / "cases" / "trwtp.json")
    assert result.tidal.was_run
    assert result.tidal.highest == pytest.approx(original["tpb"]["highest_buildup_concentration"], rel=5e-4)
    assert result.tidal.memos[0] == "Highest buildup of concentration: 2.13e-05"
