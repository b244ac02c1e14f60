"""One parameter combination's seeds stepped together: the batched runs of a sweep.

:func:`run_group` is what a sweep worker runs for a group of runs with equal parameters
(one combination's seeds, :class:`~mesa_econ.sweep.RunSpec`\\ s with equal ``kwargs``). It
builds each seed's model exactly as a run alone does (``EconomyModel(**kwargs,
rng=seed)``) and steps the K models together:

- learned policies (every model has an ``ensemble``: ``policy="actor_critic"`` or
  ``"checkpoint:PATH"``): the K markets are one :class:`~mesa_econ.batched.MarketBatch`.
  Each step, their observations are built in one pass and all K·N agents act in one
  forward pass (:class:`StackedPolicies`: the K ensembles' weights concatenated along the
  policy axis, as one ensemble of K·N policies), each market's Gaussian noise drawn from
  its own ``torch_generator`` with the shape and order its run alone draws it; then each
  market steps with those orders. The actions equal the run alone's to float32 rounding
  (the same products in a batch of K·N policies instead of N), not bit for bit.
- any other policy: each market's own ``step``, market by market (bit-identical to the
  run alone; grouping only makes fewer, larger tasks).

A run that raises is left out and reported as it would be alone (``(run_id, None, error,
traceback)``); the group's other runs go on.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mesa_econ.policies.ensemble import PolicyEnsemble
from mesa_econ.policies.normalize import NormalizedPolicy
from mesa_econ.policies.stacked import mlp, plist

if TYPE_CHECKING:
    from mesa_econ.batched import MarketBatch
    from mesa_econ.model import EconomyModel
    from mesa_econ.sweep import RunSpec

__all__ = ["StackedPolicies", "plan_tasks", "run_group", "run_task", "shares_weights"]

Result = tuple[int, Any, "str | None", "str | None"]


def shares_weights(kwargs: Mapping[str, Any]) -> bool:
    """Whether every seed of a run's combination acts with the same weights (a checkpoint):
    what ``batch_seeds=None`` batches. Untrained ``actor_critic`` seeds each have their own
    weights, so a batched forward reads as many weights as K forwards alone and gains
    ~1.0-1.15x (benchmarks/sweep_seeds.py): not worth frames that differ from the runs
    alone at float32 rounding, so they run alone unless asked."""
    policy = kwargs.get("policy")
    return isinstance(policy, str) and policy.startswith("checkpoint:")


def plan_tasks(specs: Sequence[RunSpec], n_rep: int, batch_seeds: bool | int | None
               ) -> list[list[RunSpec]]:
    """The units of work: one run, or (some of) one combination's seeds stepped together.

    Args:
        specs: the sweep's runs in plan order (a combination's ``n_rep`` runs in a row).
        n_rep: the number of seeds per combination.
        batch_seeds: None (batch the seeds of checkpoint policies), True, False or k
            (at most k).
    """
    tasks: list[list[RunSpec]] = []
    for start in range(0, len(specs), n_rep):
        group = list(specs[start:start + n_rep])
        batched = batch_seeds if batch_seeds is not None else shares_weights(group[0].kwargs)
        size = 1 if batched is False else n_rep if batched is True else int(batched)
        tasks += [group[i:i + size] for i in range(0, len(group), size)]
    return tasks


def run_task(task: Sequence[RunSpec]) -> list[Result]:
    """A task's results, in its order: a run alone, or a seed group stepped together."""
    if len(task) == 1:
        from mesa_econ.sweep import _run_one

        return [_run_one(task[0])]
    return run_group(task)


class StackedPolicies:
    """K markets' own :class:`~mesa_econ.policies.PolicyEnsemble`\\ s acting as one.

    The means of all K·N agents take one stacked MLP pass. Where the K ensembles hold
    equal weights (:attr:`shared`: one checkpoint loaded by every market), market 0's
    ensemble acts on the K markets' observations as K rows per policy (its ``actor_mean``
    on ``(K, N, obs_dim)``); else a snapshot of the K ensembles' actor weights,
    concatenated along the policy axis (``[K·G, in, out]``), acts as one ensemble of K·G
    policies. The ensembles may be wrapped in a
    :class:`~mesa_econ.policies.NormalizedPolicy` (each market's observations then go
    through its own normaliser first, as they do alone).

    Args:
        policies: the K markets' policies (``model.ensemble``), all of one architecture.

    Raises:
        ValueError: a policy that is not a (normalised) PolicyEnsemble on the CPU, or
            policies of different architectures (use :meth:`of` to get None instead).
    """

    def __init__(self, policies: Sequence[Any]) -> None:
        policies = list(policies)
        if not policies:
            raise ValueError("policies=[] is invalid: expected at least one policy")
        inner = [p.policy if type(p) is NormalizedPolicy else p for p in policies]
        first = inner[0]
        for k, ens in enumerate(inner):
            if type(ens) is not PolicyEnsemble or ens.log_std.device.type != "cpu":
                raise ValueError(f"policies[{k}]={type(ens).__name__} is invalid: expected "
                                 "a PolicyEnsemble on the CPU (or one in a NormalizedPolicy)")
            if _architecture(ens) != _architecture(first):
                raise ValueError(f"policies[{k}] has architecture {_architecture(ens)}: "
                                 f"expected policies[0]'s {_architecture(first)}")
        self.ensembles = inner
        self.normalizers = [p.normalizer if type(p) is NormalizedPolicy else None
                            for p in policies]
        self.n_markets, self.n_agents = len(inner), first.n_agents
        self.n_groups, self.act_dim = first.n_groups, first.act_dim
        # one set of weights (a checkpoint loaded by every market): K rows per policy
        self.shared = all(_same_weights(e, first) for e in inner[1:])
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        with torch.no_grad():
            if not self.shared:
                layers = zip(*(plist(e.actor_w) for e in inner), strict=True)
                self.weights = [torch.cat(ws).contiguous() for ws in layers]
                layers = zip(*(plist(e.actor_b) for e in inner), strict=True)
                self.biases = [torch.cat(bs).contiguous() for bs in layers]
            # exp(log σ) as a market's own sample computes it (sample_gaussian)
            self.stds = [torch.exp(e.agent_log_std().detach()) for e in inner]

    @classmethod
    def of(cls, policies: Sequence[Any]) -> StackedPolicies | None:
        """:class:`StackedPolicies` of ``policies``, or None where they cannot be stacked."""
        try:
            return cls(policies)
        except ValueError:
            return None

    def means(self, obs: np.ndarray) -> torch.Tensor:
        """The policy means ``(K, N, act_dim)`` for raw observations ``(K, N, obs_dim)``."""
        k, n = self.n_markets, self.n_agents
        if any(norm is not None for norm in self.normalizers):
            obs = np.stack([o if norm is None else norm.normalize(o)
                            for o, norm in zip(obs, self.normalizers, strict=True)])
        x = torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32))
        with torch.no_grad():
            if self.shared:  # [N, K, D] through market 0's weights, as actor_mean does it
                return self.ensembles[0].actor_mean(x)
            if self.n_groups == n:  # one policy per agent: [K·N, 1, D] is the grouped batch
                y = mlp(x.reshape(k * n, 1, x.shape[-1]), self.weights, self.biases, k * n)
                return y.view(k, n, self.act_dim)
            xg = torch.cat([e._to_groups(x[i].unsqueeze(1))
                            for i, e in enumerate(self.ensembles)])
            y = mlp(xg, self.weights, self.biases, k * self.n_groups)
            return torch.stack([e._from_groups(part, 1)[:, 0] for e, part in
                                zip(self.ensembles, y.split(self.n_groups), strict=True)])

    def actions(self, obs: np.ndarray, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Sampled raw actions u ``(K, N, act_dim)``: u_k = μ_k + σ_k·ε_k with ε_k drawn
        from ``generators[k]`` as market k's own ``sample`` call draws it."""
        mean = self.means(obs)
        u = torch.empty_like(mean)
        for i, gen in enumerate(generators):
            eps = torch.randn(mean[i].shape, generator=gen, dtype=mean.dtype)
            torch.add(mean[i], self.stds[i] * eps, out=u[i])
        return u


def _same_weights(a: PolicyEnsemble, b: PolicyEnsemble) -> bool:
    """Whether two ensembles hold equal actor weights and log σ (bit for bit)."""
    pairs = zip([*plist(a.actor_w), *plist(a.actor_b), a.log_std],
                [*plist(b.actor_w), *plist(b.actor_b), b.log_std], strict=True)
    return all(x is y or torch.equal(x, y) for x, y in pairs)


def _architecture(ens: PolicyEnsemble) -> tuple:
    return (ens.n_agents, ens.n_groups, ens.obs_dim, ens.act_dim, tuple(ens.hidden),
            ens.log_std.dtype)


def _failure(run_id: int, exc: BaseException) -> Result:
    return run_id, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()


class _Group:
    """The live runs of a group: their specs, models, MarketBatch and stacked policies."""

    def __init__(self, live: list[tuple[RunSpec, EconomyModel]]) -> None:
        from mesa_econ.batched import MarketBatch

        self.live = live
        models = [m for _, m in live]
        self.learned = bool(models) and all(m.ensemble is not None for m in models)
        self.batch: MarketBatch | None = MarketBatch(models) if self.learned else None
        self.stacked = (StackedPolicies.of([m.ensemble for m in models]) if self.learned
                        else None)

    def orders(self) -> np.ndarray:
        """Every market's trade volumes for the coming step, from one forward pass."""
        assert self.batch is not None
        if self.stacked is None:  # learned policies of another kind: MarketBatch's own act
            return self.batch.act()
        gens = [m.torch_generator for m in self.batch.models]
        u = self.stacked.actions(self.batch.observations(), gens)
        return self.batch.trade_scale * np.clip(u.numpy().astype(float), -1.0, 1.0)


def run_group(specs: Sequence[RunSpec]) -> list[Result]:
    """Build, step (together) and collect the runs of one parameter combination.

    Never raises: each run's result is ``(run_id, frame, None, None)`` or ``(run_id, None,
    error, traceback)``, in the order of ``specs``.
    """
    from mesa_econ.model import EconomyModel
    from mesa_econ.sweep import _frame_of

    results: dict[int, Result] = {}
    live: list[tuple[RunSpec, EconomyModel]] = []
    for spec in specs:
        try:
            live.append((spec, EconomyModel(**spec.kwargs, rng=spec.seed,
                                            collect_agents=spec.collect_agents)))
        except Exception as exc:  # as a run alone: reported, the others go on
            results[spec.run_id] = _failure(spec.run_id, exc)
    group = _Group(live)
    for _ in range(specs[0].steps if specs else 0):
        if not group.live:
            break
        failed = _step(group, results)
        if failed:
            group = _Group([run for run in group.live if run[0].run_id not in failed])
    for spec, model in group.live:
        try:
            results[spec.run_id] = (spec.run_id, _frame_of(model, spec.collect_agents),
                                    None, None)
        except Exception as exc:
            results[spec.run_id] = _failure(spec.run_id, exc)
    return [results[spec.run_id] for spec in specs]


def _step(group: _Group, results: dict[int, Result]) -> set[int]:
    """One step of every live run; returns the run_ids that failed (recorded in results)."""
    failed: set[int] = set()
    if group.batch is None:  # scripted: each market's own step, exactly as alone
        for spec, model in group.live:
            try:
                model.step()
            except Exception as exc:
                results[spec.run_id] = _failure(spec.run_id, exc)
                failed.add(spec.run_id)
        return failed
    try:
        orders = group.orders()
    except Exception as exc:  # the shared forward pass: it fails for every run alike
        for spec, _ in group.live:
            results[spec.run_id] = _failure(spec.run_id, exc)
        return {spec.run_id for spec, _ in group.live}
    t0 = group.batch.t
    try:
        group.batch.step(orders)
    except Exception as exc:
        # MarketBatch.step stops at the market that raised (left as it was): the markets
        # before it have stepped; step the ones after it here, each on its own
        models = group.batch.models
        bad = next(k for k, m in enumerate(models) if m.t == t0)
        results[group.live[bad][0].run_id] = _failure(group.live[bad][0].run_id, exc)
        failed.add(group.live[bad][0].run_id)
        for k in range(bad + 1, len(models)):
            spec, model = group.live[k]
            try:
                model.submit_orders(orders[k])
                model.step()
            except Exception as exc_k:
                results[spec.run_id] = _failure(spec.run_id, exc_k)
                failed.add(spec.run_id)
    return failed
