"""The unbiased pass@k estimator of the Codex paper (DESIGN.md data flow: "-> pass@k"):
1 - C(n - c, k) / C(n, k) per problem, averaged over problems."""

from __future__ import annotations

from typing import Iterable, Sequence


def estimate(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # The product form avoids the huge binomials of large n.
    miss = 1.0
    for m in range(n - c + 1, n + 1):
        miss *= 1.0 - k / m
    return 1.0 - miss


def pass_at_k(counts: Iterable[tuple[int, int]], ks: Sequence[int] = (1, 10, 100)) -> dict[str, float]:
    """{"pass@k": mean over problems} for every k that every problem has at least k samples for;
    `counts` holds (samples, correct) per problem."""
    counts = list(counts)
    if not counts:
        return {}
    fewest = min(n for n, _ in counts)
    return {f"pass@{k}": sum(estimate(n, c, k) for n, c in counts) / len(counts) for k in ks if k <= fewest}
