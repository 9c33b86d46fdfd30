"""Studies of one case: what a mixing-zone decision is made on, rather than one deterministic run.

* `outcomes`: the outcome of every case of a Result as one row (dilution and concentration at the
  mixing-zone boundary, at trap level, surface and bottom, rise height, distance);
* `statistics`: percentiles, fractions below a target dilution / above a concentration limit, the
  exceedance curve (`vp.statistics(result)` for a time series);
* `sampling`: input distributions and Latin hypercube / Sobol' / random samples (scipy.stats.qmc);
* `run`: `vp.uncertainty` (Monte Carlo) and `vp.sensitivity` (SALib Sobol' or Morris), whose members run
  through `sweeps.run_cases`;
* `study`: the `Study` object (members table, quantiles, plots, report, JSON form); `storage`: a study as
  one entry of the archive store; `plots`: their figures; `jobs`: studies started through the JSON API.
"""
from .run import sensitivity, uncertainty
from .statistics import OutcomeStatistics, statistics
from .study import Study

__all__ = ["uncertainty", "sensitivity", "statistics", "Study", "OutcomeStatistics"]
