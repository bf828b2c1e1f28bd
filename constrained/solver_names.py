"""The Solver's search names, defined once and torch-free: ``constrained/solver.py`` checks
``SolverConfig.search`` and ``.order`` against them; the command line offers them as its
``--search`` and ``--order`` choices without importing torch."""

from __future__ import annotations

#: ``SolverConfig.search``: the complete search where the task allows (auto), or one of the two
SEARCHES = ("auto", "complete", "local")
#: ``SolverConfig.order``: the complete search ranks a position's values by the model, or in a fixed order
ORDERS = ("model", "fixed")
