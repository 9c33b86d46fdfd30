"""Tidal pollution buildup in a 1-D channel of bins, coupled case to case (spec §11).

Fixes against the reference port (spec §13 item 11): the added-volume array shifts together with the
pollutant array; decay is exact (p·e^(−kΔt)), so it can never turn the stored pollutant negative; a case
that moves the plume upstream of the first bin shifts the storage window instead of freezing the
buildup. Kept as specified: the zero-current floor of 0.001 m/s (applied by the near field, spec §7.5),
the sampled neighbour bin chosen on the first case, the coast-water refill.
"""
from __future__ import annotations

import math

BINS = 200
HOME_BIN = 100
SHIFT = 10


class TidalChannel:
    """State of the tidal buildup model across the cases of one run."""

    def __init__(self, segment_length: float, channel_width: float, bottom_depth: float,
                 upstream_dir: float, coast_bin: int, coast_concentration: float, time_step: float) -> None:
        self.length = segment_length
        self.bin_volume = segment_length * channel_width * bottom_depth
        self.upstream_dir = upstream_dir
        self.coast_bin = coast_bin
        self.coast_concentration = coast_concentration
        self.dt = time_step
        self.pollutant = [0.0] * BINS
        self.volume = [0.0] * BINS
        self.i = self.i1 = HOME_BIN
        self.x = HOME_BIN * segment_length
        self.x0 = 0.0
        self.first = True
        self.sample_downstream = False
        self.concentration = 0.0
        self.highest = 0.0
        self.highest_bin = 0
        self.shifted_downstream = False
        self.shifted_upstream = False

    def _shift(self, bins: int) -> None:
        """Move the storage window by `bins` (positive: drop the first bins, as the port does at the end);
        a shift by more than the window empties it."""
        if bins > 0:
            self.pollutant = (self.pollutant[bins:] + [0.0] * BINS)[:BINS]
            self.volume = (self.volume[bins:] + [0.0] * BINS)[:BINS]
        else:
            keep = max(BINS + bins, 0)
            self.pollutant = ([0.0] * BINS + self.pollutant[:keep])[-BINS:]
            self.volume = ([0.0] * BINS + self.volume[:keep])[-BINS:]
        self.i1 -= bins
        self.i -= bins
        self.x -= bins * self.length
        self.x0 -= bins * self.length

    def after_case(self, flow: float, initial_mass: float, initial_pollutant: float, current_speed: float,
                   current_dir: float, decay_rate: float) -> float:
        """Add one case's effluent, advect with its current, decay; return the buildup for the next case."""
        if self.i1 >= BINS:             # spec §11 step 1, every 10-bin shift the loop would make at once
            self._shift(SHIFT * ((self.i1 - BINS) // SHIFT + 1))
            self.shifted_downstream = True
        added_volume = flow * self.dt                             # step 2
        added_pollutant = added_volume * initial_pollutant / initial_mass
        lo, hi = min(self.i, self.i1), max(self.i, self.i1)
        lo, hi = max(lo, 0), min(hi, BINS - 1)
        share = 1.0 / (hi - lo + 1)
        for b in range(lo, hi + 1):
            self.pollutant[b] += added_pollutant * share
            self.volume[b] += added_volume * share
        self.x0 = self.x                                          # step 3
        along = math.cos((current_dir - self.upstream_dir) * math.pi / 180.0)
        self.x -= current_speed * along * self.dt
        self.i = self.i1
        self.i1 = math.floor(self.x / self.length)
        if self.i1 < 0:                                           # fixed: move the window upstream
            self._shift(-SHIFT * ((-self.i1 - 1) // SHIFT + 1))
            self.shifted_upstream = True
        if self.i1 > HOME_BIN and self.i1 > self.i:               # step 4: coast water refills
            for b in range(0, min(self.i1 - (HOME_BIN - self.coast_bin), BINS - 1) + 1):
                self.pollutant[b] = self.coast_concentration * self.bin_volume
                self.volume[b] = 0.0
        if decay_rate > 0.0:                                      # step 5, exact decay
            factor = math.exp(-decay_rate * self.dt)
            self.pollutant = [p * factor for p in self.pollutant]
        if self.first:                                            # step 6
            self.sample_downstream = self.x > self.x0
            self.first = False
        j = self.i + 1 if self.sample_downstream else self.i - 1
        j = min(max(j, 0), BINS - 1)
        self.concentration = self.pollutant[j] / (self.bin_volume + self.volume[j])
        if self.concentration > self.highest:
            self.highest = self.concentration
        for b in range(BINS - 1, -1, -1):
            if self.pollutant[b] > 0.0:
                self.highest_bin = max(self.highest_bin, b)
                break
        return self.concentration

    def memos(self, cases: int) -> list[str]:
        lines = [f"Highest buildup of concentration: {self.highest:.2e}"]
        if self.shifted_downstream:
            lines.append("Internal array cells used >= 200 perhaps signaling undesirable loss of pollutant "
                         "upstream. Increase Channel seg. length on the Settings tab")
        elif cases > 200 and self.highest_bin < 190:
            lines.append("Fewer than 190 internal array cells used over more than 200 cases: a shorter "
                         "channel segment length would resolve the buildup better.")
        if self.shifted_upstream:
            lines.append("Outside of upstream storage limits: the storage window was moved upstream; "
                         "pollutant beyond its downstream end is no longer tracked.")
        return lines
