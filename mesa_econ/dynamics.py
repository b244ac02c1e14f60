"""One market step on arrays. Implements §5 (with §2.2, §3.2 and the feasibility rules).

Pure functions: state arrays and random draws in, new arrays out. No Mesa, no torch.
The order of a step (see :func:`market_step`):

1. peer influence (§5.3): ã_i = a_i + ν Σ_{k∈N(i)} w_ik a_k;
2. feasibility: no short sales (ã_ij >= −H_ij), buys scaled down to what i can pay;
3. settlement (§5.2): ``"curve"`` clears each asset's net flow Δ_j at the uniform price
   (R(S+Δ) − R(S))/Δ and moves the reserve by exactly R(S+Δ) − R(S); ``"spot"`` is the
   paper's literal B_i −= Σ_j ã_ij P_j(t). A sale the reserve cannot pay is filled
   partially (every seller of that asset scaled alike) and the fill is reported;
   A trading fee φ (a fraction of the traded value) is paid on top by buyers and out of
   the proceeds of sellers, to an external account; budgets include it;
4. capital (§5.2) B_i += −payment_i − fee_i + I; holdings (§5.3) H_i += ã_i;
5. supply (§5.1) S_j = Σ_i H_ij after minting/burning ψ_j pro rata to holders;
6. yield: B_i += Σ_j y_j Z_j H_ij(t+1), paid from/to an external account (Z_j ~ N(m_j,
   s_j²): m_j is the carry, Z_j − m_j the news), a negative payment capped at the agent's
   capital (limited liability); a congestion fee c_j per unit of supply above capacity
   C_j, shared pro rata by the holders, is paid to the external account (with the fees);
7. price deviation and quote (§3.1-§3.3, see :mod:`mesa_econ.pricing`).

Money is conserved: Σ_i B_i + Σ_j reserve_j changes only by the income and yield paid in
and the fees paid out (all three reported in :class:`StepInfo`).
Tokens are conserved: S_j = Σ_i H_ij, changed only by trades against the curve and ψ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mesa_econ import pricing
from mesa_econ.curves import SupplyQuote
from mesa_econ.settlement import (
    _settle_curve,
    _settle_spot,
    cap_buys_to_room,
    column_sums,
    scale_buys_to_budget,
    settle_curve,
    settle_spot,
)

try:  # scipy's sparse kernels (private, stable since scipy 1.8): see _neighbour_sum
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover - a scipy that moved them: the public product
    _sparsetools = None

if TYPE_CHECKING:
    from scipy.sparse import sparray, spmatrix

    from mesa_econ.config import MarketConfig
    from mesa_econ.curves import BondingCurve

__all__ = [
    "MarketParams",
    "MarketState",
    "StepInfo",
    "StepNoise",
    "cap_buys_to_room",
    "clip_short_sales",
    "column_sums",
    "market_step",
    "mint_burn",
    "peer_influence",
    "price_without_each",
    "scale_buys_to_budget",
    "settle_curve",
    "settle_spot",
]

@dataclass(frozen=True)
class MarketState:
    """The state of record of the market (all numpy float arrays)."""

    capital: np.ndarray
    """B_i, shape (N,)."""
    holdings: np.ndarray
    """H_ij, shape (N, M)."""
    supply: np.ndarray
    """S_j = Σ_i H_ij, shape (M,)."""
    reserve: np.ndarray
    """Base currency held by each asset's bonding curve, shape (M,)."""
    deviation: np.ndarray
    """X_j, the persistent deviation of the quote from the curve, shape (M,)."""
    price: np.ndarray
    """P_j, the quoted price, shape (M,)."""


@dataclass(frozen=True)
class MarketParams:
    """Per-asset arrays of the market's coefficients (built once from a MarketConfig)."""

    nu: float
    kappa: np.ndarray
    lam: np.ndarray
    theta: np.ndarray
    sigma0: np.ndarray
    sigma1: np.ndarray
    zeta: np.ndarray
    factor_mean: np.ndarray
    psi: np.ndarray
    dt: float
    income: float
    settlement: str
    price_floor: float
    fee: float = 0.0
    yield_rate: np.ndarray | None = None
    congestion: tuple[np.ndarray, np.ndarray] | None = None
    """(c_j, C_j): congestion fee per unit above capacity, and the capacity."""
    attribute_price: bool = False
    """Compute :attr:`StepInfo.price_without` (the attributed stability reward needs it)."""
    peer_cap: float | None = None
    """Largest |ν Σ_k w_ik a_kj|, the forced part of an executed order, in volume
    (``MarketConfig.peer_cap`` · trade_scale); None: uncapped (§5.3 as written)."""

    @classmethod
    def from_config(cls, cfg: MarketConfig) -> MarketParams:
        """Broadcast a validated :class:`~mesa_econ.config.MarketConfig` to arrays."""
        pa = cfg.per_asset
        return cls(nu=float(cfg.nu), kappa=pa("kappa"), lam=pa("lam"), theta=pa("theta"),
                   sigma0=pa("sigma0"), sigma1=pa("sigma1"), zeta=pa("zeta"),
                   factor_mean=pa("factor_mean"), psi=pa("psi"), dt=float(cfg.dt),
                   income=float(cfg.income), settlement=cfg.settlement,
                   price_floor=float(cfg.price_floor), fee=float(cfg.fee),
                   yield_rate=pa("yield_rate") if np.any(pa("yield_rate")) else None,
                   congestion=((pa("congestion_fee"), pa("capacity"))
                               if np.any(pa("congestion_fee")) else None),
                   peer_cap=(None if cfg.peer_cap is None
                             else float(cfg.peer_cap) * float(cfg.trade_scale)))


@dataclass(frozen=True)
class StepNoise:
    """The random draws of one step, made by the caller from the model's generator."""

    factors: np.ndarray
    """Z_j(t) ~ N(m_j, s_j²) (§2.1), shape (M,)."""
    dW: np.ndarray
    """Wiener increments ~ N(0, dt) (§3.3), shape (M,)."""
    eta: np.ndarray
    """Quote noise η_j ~ N(0, σ_η,j²) (§3.1), shape (M,)."""


@dataclass(frozen=True)
class StepInfo:
    """What happened in a step, for rewards, metrics and tests."""

    executed: np.ndarray
    """ã_ij, the feasible executed orders after peer influence, shape (N, M)."""
    net_flow: np.ndarray
    """Δ_j = Σ_i ã_ij, shape (M,)."""
    demand: np.ndarray
    """D_j = Σ_i max(ã_ij, 0), shape (M,)."""
    clearing_price: np.ndarray
    """Price per token paid for each asset this step, shape (M,)."""
    payments: np.ndarray
    """Base currency paid by each agent for its trades (negative: received), shape (N,)."""
    reserve_change: np.ndarray
    """Change of each asset's reserve from trading, shape (M,)."""
    sell_fill: np.ndarray
    """Fraction of each asset's sells filled (1 unless the reserve ran short), shape (M,)."""
    curve_price: np.ndarray
    """f_j(S_j) at the post-step supply, shape (M,)."""
    fees: np.ndarray | None = None
    """Trading and congestion fees paid by each agent to the external account, shape (N,)
    (None: neither)."""
    yield_paid: np.ndarray | None = None
    """Yield received by each agent (negative: paid), shape (N,) (None: no yield)."""
    price_without: np.ndarray | None = None
    """P_j(t+1) had agent i's executed trade ã_i not happened, shape (N, M): the curve and
    impact parts recomputed, the noise kept (None unless ``attribute_price``)."""


def peer_influence(orders: np.ndarray, nu: float,
                   adjacency: spmatrix | sparray | None = None,
                   cap: float | None = None) -> np.ndarray:
    """Orders after peer effects. Implements §5.3 (multi-agent influence).

    Notes:
        ã_ij = a_ij + ν Σ_{k∈N(i)} w_ik a_kj. With ``adjacency=None`` the graph is complete
        and the sum is the paper's Σ_{k≠i} a_kj = Σ_k a_kj − a_ij, computed in O(N·M).
        With ``cap`` the forced part is clipped: ã_ij = a_ij + clip(ν Σ_k w_ik a_kj, ±cap)
        (uncapped, one agent's huge order forces its neighbours to trade as much; see
        docs/model.md, Peer influence).

    Args:
        orders: requested orders a_ij, shape (N, M).
        nu: ν >= 0.
        adjacency: sparse (N, N) weights w_ik with zero diagonal, or None (complete graph).
        cap: largest |forced part| in volume, or None (uncapped).
    """
    if nu == 0.0:
        return orders
    if adjacency is None:
        forced = nu * (column_sums(orders) - orders)  # §5.3, complete graph
    else:
        forced = nu * _neighbour_sum(adjacency, orders)  # §5.3
    if cap is not None:
        forced = np.clip(forced, -cap, cap)
    return orders + forced


def _neighbour_sum(adjacency: spmatrix | sparray, orders: np.ndarray) -> np.ndarray:
    """``adjacency @ orders`` (Σ_k w_ik a_kj), bit for bit, cheaper at small N.

    For a float64 CSR matrix and C-ordered float64 orders this calls the kernel that
    scipy's ``@`` itself runs (``csr_matvec`` for one column, ``csr_matvecs`` for more,
    as scipy dispatches), without the dispatch, which costs more than the product at
    the model's sizes. Anything else takes the public product.
    """
    n = orders.shape[0]
    if (_sparsetools is None or getattr(adjacency, "format", None) != "csr"
            or adjacency.dtype != np.float64 or orders.dtype != np.float64
            or orders.ndim != 2 or not orders.flags.c_contiguous
            or adjacency.shape != (n, n)):
        return adjacency @ orders
    m = orders.shape[1]
    out = np.zeros((n, m))
    if m == 1:
        _sparsetools.csr_matvec(n, n, adjacency.indptr, adjacency.indices, adjacency.data,
                                orders.ravel(), out.ravel())
    else:
        _sparsetools.csr_matvecs(n, n, m, adjacency.indptr, adjacency.indices,
                                 adjacency.data, orders.ravel(), out.ravel())
    return out


def clip_short_sales(orders: np.ndarray, holdings: np.ndarray) -> np.ndarray:
    """No short sales: a sell is at most the agent's holding (ã_ij >= −H_ij)."""
    return np.maximum(orders, -holdings)


def mint_burn(holdings: np.ndarray, supply: np.ndarray, psi: np.ndarray,
              limit: np.ndarray | None = None) -> np.ndarray:
    """Mint (ψ > 0) or burn (ψ < 0) tokens pro rata to holders. Implements §5.1's ψ_j.

    Notes:
        H_ij ← H_ij (S_j + ψ_j) / S_j, so S_j ← S_j + ψ_j and every holder keeps its share.
        A burn is capped at the supply, a mint at ``limit`` (the curve's supply limit);
        tokens minted into an asset nobody holds are split equally. Where (S + ψ)/S
        overflows (S denormal), H_ij ← (H_ij / S_j)(S_j + ψ_j). ψ does not touch the
        reserve (reserve coverage R / R(S) shows the dilution).
    """
    if not psi.any():
        return holdings
    psi = np.maximum(psi, -supply)
    if limit is not None:
        psi = np.minimum(psi, np.maximum(limit - supply, 0.0))
    empty = supply <= 0.0
    denominator = np.where(empty, 1.0, supply)
    with np.errstate(over="ignore", invalid="ignore"):
        factor = np.where(empty, 1.0, (supply + psi) / denominator)
        out = holdings * factor
    if not np.isfinite(factor).all():  # S so small that (S + ψ)/S overflows
        huge = ~np.isfinite(factor)
        out = np.where(huge, holdings / denominator * (supply + psi), out)
    if np.any(empty & (psi > 0)):
        out = out + np.where(empty & (psi > 0), psi / holdings.shape[0], 0.0)
    return out


def market_step(state: MarketState, orders: np.ndarray, params: MarketParams,
                curve: BondingCurve, noise: StepNoise,
                adjacency: spmatrix | sparray | None = None, *,
                curve_price: np.ndarray | None = None) -> tuple[MarketState, StepInfo]:
    """Advance the market one step. Implements §5.1-§5.3 with §3.1-§3.3 pricing.

    Args:
        state: the market before the step.
        orders: requested trade volumes a_ij (positive buys), shape (N, M).
        params: the market's coefficients.
        curve: the assets' bonding curves (vectorised over assets).
        noise: this step's random draws.
        adjacency: peer-influence weights (None: complete graph).
        curve_price: f(S) at ``state.supply`` as ``curve.price`` gave it, if the caller
            has it (the model keeps the last step's ``info.curve_price``); computed here
            when needed otherwise.

    Returns:
        (new state, step info).
    """
    executed = peer_influence(orders, params.nu, adjacency, params.peer_cap)  # §5.3
    executed = clip_short_sales(executed, state.holdings)
    # a fee φ on top of a buy's cost: buys are budgeted against B / (1 + φ)
    budget = state.capital if params.fee == 0.0 else state.capital / (1.0 + params.fee)
    if params.settlement == "curve":
        quote = SupplyQuote(curve, state.supply, spot=curve_price)
        executed, payments, reserve_change, clearing, fill, net_flow = _settle_curve(
            executed, budget, state.reserve, quote)
    else:
        executed, payments, reserve_change, clearing, fill, net_flow, demand = _settle_spot(
            executed, budget, state.reserve, state.price, curve.supply_limit - state.supply)
    capital = state.capital - payments + params.income  # §5.2
    fees = None
    if params.fee != 0.0:  # φ Σ_j |ã_ij| p̄_j, to the external account
        fees = params.fee * (np.abs(executed) @ clearing)
        capital = capital - fees  # >= 0: buys were budgeted against B / (1 + φ)
    holdings = state.holdings + executed  # §5.3
    if params.psi.any():  # §5.1's ψ
        holdings = mint_burn(holdings, state.supply + net_flow, params.psi,
                             curve.supply_limit)
    supply = column_sums(holdings)  # §5.1: S_j = Σ_i H_ij
    yield_paid = None
    if params.yield_rate is not None:  # y_j Z_j per token held after the trade
        per_token = params.yield_rate * noise.factors
        yield_paid = np.maximum(holdings @ per_token, -capital)  # limited liability
        capital = capital + yield_paid
    if params.congestion is not None:  # c_j per unit above C_j, shared pro rata
        rate, capacity = params.congestion
        per_token = np.zeros_like(supply)
        np.divide(rate * np.maximum(supply - capacity, 0.0), supply, out=per_token,
                  where=supply > 0)
        charge = np.minimum(holdings @ per_token, capital)
        capital = capital - charge
        fees = charge if fees is None else fees + charge
    reserve = np.maximum(state.reserve + reserve_change, 0.0)
    if params.settlement == "curve":
        demand = column_sums(np.maximum(executed, 0.0))  # D_j = Σ_i max(ã_ij, 0)
    impact = pricing.market_impact(net_flow, demand, state.supply, params.kappa, params.lam)
    deviation = pricing.update_deviation(
        state.deviation, impact=impact, price=state.price, factors=noise.factors,
        factor_mean=params.factor_mean, theta=params.theta, sigma0=params.sigma0,
        sigma1=params.sigma1, zeta=params.zeta, dt=params.dt, dW=noise.dW)
    curve_price = SupplyQuote(curve, supply).spot  # = curve.price(supply), checked alike
    price = pricing.quoted_price(curve_price, deviation, noise.eta, params.price_floor)
    new_state = MarketState(capital=capital, holdings=holdings, supply=supply,
                            reserve=reserve, deviation=deviation, price=price)
    price_without = None
    if params.attribute_price:
        price_without = price_without_each(executed, supply, deviation, noise.eta, params,
                                           curve)
    info = StepInfo(executed=executed, net_flow=net_flow, demand=demand,
                    clearing_price=clearing, payments=payments,
                    reserve_change=reserve_change, sell_fill=fill, curve_price=curve_price,
                    fees=fees, yield_paid=yield_paid, price_without=price_without)
    return new_state, info


def price_without_each(executed: np.ndarray, supply: np.ndarray, deviation: np.ndarray,
                       eta: np.ndarray, params: MarketParams,
                       curve: BondingCurve) -> np.ndarray:
    """The quoted price each agent's own trade is answerable for: P_j(t+1) without ã_i.

    Notes:
        P^{−i}_j = max(f_j(S'_j − ã_ij) + X'_j − κ_j ã_ij − λ_j max(ã_ij, 0) + η_j, floor):
        the curve part (§3.1) and the impact part (§3.2, κΔ + λ(D − S)) recomputed with
        agent i's executed trade removed; the mean reversion, the SDE noise, the factor
        term and η stay as they were (unattributed). Other agents' trades, including any
        peer-influence part of ã_i, are taken as given. S'_j − ã_ij >= H_ij >= 0, so the
        curve is evaluated inside its domain.

    Returns:
        Shape (N, M).
    """
    counterfactual_supply = np.maximum(supply - executed, 0.0)  # (N, M)
    impact_i = params.kappa * executed + params.lam * np.maximum(executed, 0.0)  # §3.2
    return np.maximum(curve.price(counterfactual_supply) + (deviation + eta) - impact_i,
                      params.price_floor)
