"""A Gaussian mixture with full covariances, fitted by expectation-maximisation.

The simplest generative model that learns a data distribution: an explicit density
``p(x) = sum_k pi_k N(x; mu_k, Sigma_k)`` with an exact log-likelihood and ancestral
sampling (pick a component, then draw from it). EM follows Bishop, *Pattern Recognition and
Machine Learning* (2006), section 9.2.2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GMMConfig:
    """Fitting settings.

    Attributes:
        components: number of mixture components K (>= 1).
        iterations: maximum EM iterations (>= 1).
        tol: stop when the mean log-likelihood improves by less than this.
        reg: added to covariance diagonals so no component collapses onto one point.
    """

    components: int = 8
    iterations: int = 200
    tol: float = 1e-5
    reg: float = 1e-4

    def __post_init__(self) -> None:
        if self.components < 1:
            raise ValueError(f"components must be >= 1, got {self.components}.")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}.")
        if self.reg < 0 or self.tol < 0:
            raise ValueError("reg and tol must be >= 0.")


class GaussianMixture(torch.nn.Module):
    """K full-covariance Gaussians in D dimensions; parameters are buffers (no gradients).

    Args:
        weights: ``(K,)`` mixing proportions summing to one.
        means: ``(K, D)``.
        covariances: ``(K, D, D)``, symmetric positive definite.
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor):
        super().__init__()
        self.register_buffer("weights", weights)
        self.register_buffer("means", means)
        self.register_buffer("covariances", covariances)

    @property
    def n_parameters(self) -> int:
        """Free parameters: (K-1) weights + K*D means + K*D(D+1)/2 covariances."""
        k, d = self.means.shape
        return (k - 1) + k * d + k * d * (d + 1) // 2

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log pi_k + log N(x_n; mu_k, Sigma_k)`` for every point and component: ``(N, K)``."""
        d = x.shape[1]
        chol = torch.linalg.cholesky(self.covariances)  # (K, D, D)
        diff = x[:, None, :] - self.means[None]  # (N, K, D)
        # Solve L z = diff for each component: z = L^-1 (x - mu), so |z|^2 is the Mahalanobis term.
        z = torch.linalg.solve_triangular(
            chol[None], diff[..., None], upper=False
        ).squeeze(-1)  # (N, K, D)
        maha = (z**2).sum(-1)  # (N, K)
        log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K,)
        log_norm = -0.5 * (d * math.log(2 * math.pi) + log_det)  # (K,)
        return torch.log(self.weights)[None] + log_norm[None] - 0.5 * maha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`component_log_prob`, ``(N, K)``."""
        return self.component_log_prob(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of each point, ``(N,)`` in nats."""
        return torch.logsumexp(self(x), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Ancestral sampling: component ``k ~ pi``, then ``x ~ N(mu_k, Sigma_k)``. ``(n, D)``."""
        dev = self.means.device  # the draws come from the CPU generator, then move
        k = torch.multinomial(self.weights.cpu(), n, replacement=True,
                              generator=generator).to(dev)  # (n,)
        chol = torch.linalg.cholesky(self.covariances)[k]  # (n, D, D)
        eps = torch.randn((n, self.means.shape[1], 1), generator=generator,
                          dtype=self.means.dtype).to(dev)
        return self.means[k] + (chol @ eps).squeeze(-1)

    def bic(self, x: torch.Tensor) -> float:
        """Bayesian information criterion on ``x`` (lower is better)."""
        return float(-2 * self.log_prob(x).sum() + self.n_parameters * math.log(len(x)))


def _kmeans_pp_init(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007): spread-out initial means, ``(k, D)``."""
    first = torch.randint(0, len(x), (1,), generator=generator)
    centres = [x[int(first[0])]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).min(dim=1).values ** 2  # (N,)
        # drawn by the CPU generator wherever x lives
        idx = torch.multinomial((d2 / d2.sum()).cpu(), 1, generator=generator)
        centres.append(x[int(idx[0])])
    return torch.stack(centres)


def fit_gmm(
    x: torch.Tensor, config: GMMConfig, generator: torch.Generator
) -> tuple[GaussianMixture, list[float]]:
    """Fit a mixture to ``x`` by EM.

    Args:
        x: training points ``(N, D)``; the fit runs on their device.
        config: fitting settings.
        generator: randomness for the k-means++ initialisation (a CPU generator).

    Returns:
        The fitted mixture and the mean training log-likelihood after each iteration
        (non-decreasing, up to the covariance regulariser: EM's monotonicity).
    """
    x = x.double()
    n, d = x.shape
    k = config.components
    if n < k:
        raise ValueError(f"Need at least as many points as components ({n} < {k}).")
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    means = _kmeans_pp_init(x, k, generator)
    cov = torch.cov(x.T) + config.reg * eye
    model = GaussianMixture(
        torch.full((k,), 1.0 / k, dtype=x.dtype), means, cov.expand(k, d, d).clone()
    )
    history: list[float] = []
    for _ in range(config.iterations):
        # E step: responsibilities r_nk = p(component k | x_n).
        log_joint = model(x)  # (N, K)
        ll = torch.logsumexp(log_joint, dim=1)  # (N,)
        history.append(float(ll.mean()))
        resp = torch.exp(log_joint - ll[:, None])  # (N, K)
        # M step: closed-form weighted maximum likelihood.
        nk = resp.sum(0) + 1e-10  # (K,)
        means = (resp.T @ x) / nk[:, None]  # (K, D)
        diff = x[:, None, :] - means[None]  # (N, K, D)
        cov = torch.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk[:, None, None]
        model = GaussianMixture(nk / n, means, cov + config.reg * eye)
        if len(history) > 1 and abs(history[-1] - history[-2]) < config.tol:
            break
    return model.float(), history
