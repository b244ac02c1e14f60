"""Moved to :mod:`mesa_econ.policies.q_ensemble` (a Q checkpoint drives a model, which must
not import ``rl/``); this module re-exports its names so old imports keep working."""

from mesa_econ.policies.q_ensemble import (
    HEAD_GAIN,
    HIDDEN_GAIN,
    QAgentView,
    QEnsemble,
    graph_edges,
    neighbour_mean,
)

__all__ = ["HEAD_GAIN", "HIDDEN_GAIN", "QAgentView", "QEnsemble", "graph_edges",
           "neighbour_mean"]
