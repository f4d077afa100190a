"""The verdict: does a sweep's best configuration beat the runner-up by more than seed noise?
Pure, no I/O.

Welch's test on the two configurations' repeats (the values of their succeeded runs): the gap
of the means d = |m1 - m2| against its standard error SE = sqrt(s1^2/n1 + s2^2/n2) (s: the
sample standard deviation, ddof=1). The best wins clearly when d > t * SE, t being Student's
two-sided 95% critical value at Welch-Satterthwaite's degrees of freedom
df = (v1 + v2)^2 / (v1^2/(n1-1) + v2^2/(n2-1)), v = s^2/n, rounded down (the safe side):
about 2 for many repeats, 4.3 for two repeats each, so a few repeats need a wider gap.
Either side with n < 2 has no measured noise: "not enough repeats". No scipy: the critical
values are the table below.
"""

from __future__ import annotations

import math
from typing import Any

from lab.configs import Configuration

# Student's t, 0.975 quantile, for df = 1 .. 30; above 30 the normal's 1.96, rounded up.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
CLEAR, NOISE, FEW, ALONE = "clear", "noise", "not_enough_repeats", "no_runner_up"


def t_critical(df: float) -> float:
    """The two-sided 95% critical value of Student's t at floor(df) degrees of freedom."""
    if not df <= len(_T975):  # more, or infinite (no noise at all)
        return 2.0
    return _T975[max(1, math.floor(df + 1e-9)) - 1]  # 4 computed as 3.9999999999 is 4


def welch(best: Configuration, other: Configuration) -> tuple[float, float]:
    """(SE, df) of the difference of the two means; both have n >= 2."""
    v1, v2 = (best.std or 0.0) ** 2 / best.n, (other.std or 0.0) ** 2 / other.n
    se = math.sqrt(v1 + v2)
    if se == 0:
        return 0.0, math.inf
    return se, (v1 + v2) ** 2 / (v1**2 / (best.n - 1) + v2**2 / (other.n - 1))


def verdict(configs: list[Configuration], *, metric: str) -> dict[str, Any] | None:
    """The verdict on configurations ranked best first (lab.configs.configurations), or None
    while none has a succeeded run."""
    finished = [c for c in configs if c.tier == 0]
    if not finished:
        return None
    out: dict[str, Any] = {
        "metric": metric,
        "best": side(finished[0]),
        "runner_up": None,
        **dict.fromkeys(("diff", "se", "ratio", "df", "threshold")),
    }
    if len(finished) == 1:
        summary = f"{label(finished[0])} is the only configuration with finished runs so far"
        return {**out, "status": ALONE, "summary": summary}
    best, other = finished[:2]
    out.update(runner_up=side(other), diff=abs((best.mean or 0.0) - (other.mean or 0.0)))
    if best.n < 2 or other.n < 2:
        return {**out, "status": FEW, "summary": _few(out, best, other)}
    se, df = welch(best, other)
    threshold = t_critical(df)
    clear = out["diff"] > threshold * se
    out.update(se=se, ratio=out["diff"] / se if se else None, df=_finite(df), threshold=threshold)
    summary = _tested(out, best, other, clear=clear)
    return {**out, "status": CLEAR if clear else NOISE, "summary": summary}


def side(config: Configuration) -> dict[str, Any]:
    """One side of the comparison: its configuration and numbers."""
    return {
        "varied": config.varied,
        "mean": config.mean,
        "std": config.std,
        "n": config.n,
        "run_ids": config.run_ids,
    }


def label(config: Configuration) -> str:
    """The configuration in words, e.g. `activation=relu lr=0.001`."""
    return " ".join(f"{k}={v}" for k, v in config.varied.items()) or config.best_run["id"]


def _few(out: dict[str, Any], best: Configuration, other: Configuration) -> str:
    return (
        f"{label(best)} leads {label(other)} by {out['diff']:.3g} in {out['metric']}, but with "
        f"{best.n} vs {other.n} finished runs the seed noise is unknown: not enough repeats "
        "to call a winner (use repeats 3 or more)"
    )


def _tested(out: dict[str, Any], best: Configuration, other: Configuration, *, clear: bool) -> str:
    head = (
        f"{label(best)} vs {label(other)} in {out['metric']}: means {best.mean:.4g} vs "
        f"{other.mean:.4g} ({best.n} vs {other.n} runs)"
    )
    if out["se"] == 0:
        noise = "every seed gave the same value"
        return f"{head}; {noise}: " + ("a real difference" if clear else "a tie")
    gap = f"a gap of {out['diff']:.3g} = {out['ratio']:.2g} standard errors"
    if clear:
        return f"{head}, {gap} (over {out['threshold']:.2f}): a real winner, beyond seed noise"
    return (
        f"{head}, {gap} (needs {out['threshold']:.2f}): within seed noise, no clear winner "
        "(more repeats may tell)"
    )


def _finite(value: float) -> float | None:
    """JSON has no infinity: None stands for it."""
    return value if math.isfinite(value) else None
