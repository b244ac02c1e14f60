"""Analysis of a market and its agents (§7): curve tuning (§7.1, :mod:`.tuning`),
stability (§7.2, :mod:`.stability`) and the Nash gap (§7.3, :mod:`.equilibrium`).

Each module is imported on its own (``from mesa_econ.analysis import tuning``); tuning
needs the ``analysis`` extra (Optuna).
"""
