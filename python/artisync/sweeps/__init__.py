"""W&B sweeps run locally: the sweep config, the grid and random searches, and how a
trial's ``init`` learns its parameters (``artisync.sweep`` and ``artisync.agent`` are in
:mod:`artisync.sdk.sweep_agent`)."""

from artisync.sweeps.config import Metric, Parameter, SweepPlan, parse_sweep_config
from artisync.sweeps.search import grid_points, grid_size, next_grid_point, point_key, sample
from artisync.sweeps.trial import Trial, trial_for_init

__all__ = [
    "Metric",
    "Parameter",
    "SweepPlan",
    "Trial",
    "grid_points",
    "grid_size",
    "next_grid_point",
    "parse_sweep_config",
    "point_key",
    "sample",
    "trial_for_init",
]
