"""The one comparison rule: is one method's number below another's, and how sure is that?

Every "fastest", "best", "lowest" and "confirmed" in a report comes from `compare`:

- Paired by seed (the same seed = the same split, initial weights and batch order), the exact
  **sign test**: among the n shared seeds where the two values differ, count the seeds where a
  is lower; with no difference between the methods that count is Binomial(n, 1/2). Equal
  values (both never reached a target, or identical runs) carry no information and are left
  out, as the sign test does. inf (never reached, diverged) is an ordinary, worst value.
- **clear**: p <= `LEVEL` (0.05). The p-value is two-sided where the direction was picked from
  the data (the method with the lowest median against each other one: "fastest", "lowest
  hold-out loss"), one-sided for a direction stated in advance (the notebooks' claims). So
  when two methods do not differ, at most 5% of such statements are wrong.
- **suggestive**: every differing seed agrees, but there are too few seeds for p to reach the
  level: all n agreeing gives p = 2 x 0.5^n two-sided (6 seeds needed) or 0.5^n one-sided
  (5 seeds). With the default 3 seeds nothing can be "clear"; the reports say "suggestive".
- **equal**: the same value in every shared seed.
- **exact**: a deterministic problem (the seed changes nothing: full batch from a fixed start,
  e.g. the 2-D functions), whose values are compared directly.
- **too few seeds**: fewer than two differing seeds (one seed of a random problem).
- **unclear**: anything else (the seeds disagree): the methods are named as tied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.analysis.stats import Estimate, median_ci

LEVEL = 0.05
TWO_SIDED, LESS = "two-sided", "less"

CLEAR, SUGGESTIVE, EXACT = "clear", "suggestive", "exact"
EQUAL, UNCLEAR, TOO_FEW, NOT_LOWER = "equal", "unclear", "too few seeds", "not lower"
LOWER = (CLEAR, SUGGESTIVE, EXACT)  # verdicts that name a as the lower one


def sign_p(below: int, n: int, alternative: str = TWO_SIDED) -> float:
    """Exact sign-test p-value of `below` successes in `n` differing pairs.

    one-sided ("less": a is lower): P(X >= below); two-sided: 2 P(X >= max(below, n - below)),
    capped at 1; X ~ Binomial(n, 1/2)."""
    if n == 0:
        return 1.0
    k = below if alternative == LESS else max(below, n - below)
    tail = sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n
    return min(1.0, tail if alternative == LESS else 2 * tail)


def seeds_needed(alternative: str = TWO_SIDED, level: float = LEVEL) -> int:
    """The fewest differing seeds that can reach `level` (all of them agreeing)."""
    n = 1
    while sign_p(n, n, alternative) > level:
        n += 1
    return n


@dataclass(frozen=True)
class Comparison:
    """a against b over their shared seeds."""

    below: int  # seeds where a < b
    above: int  # seeds where a > b
    equal: int  # seeds where a == b
    p: float
    verdict: str
    one_sided: bool = False

    @property
    def lower(self) -> bool:
        return self.verdict in LOWER

    @property
    def n(self) -> int:
        return self.below + self.above + self.equal

    def evidence(self, a: str, b: str) -> str:
        """e.g. 'a lower in 5 of 5 seeds, sign test p = 0.031 (one-sided)'."""
        if self.verdict == EXACT:
            return f"{a} lower (deterministic: one value each)"
        if self.verdict == EQUAL:
            return f"{a} and {b} equal in all {self.n} seeds"
        side = "one-sided" if self.one_sided else "two-sided"
        return (
            f"{a} lower in {self.below} of {self.n} seeds"
            + (f" ({self.equal} equal)" if self.equal else "")
            + f", sign test p = {self.p:.2g} ({side})"
        )


def _clean(v: pd.Series) -> pd.Series:
    v = v.astype(float)
    return v[~np.isnan(v)]


def compare(
    a: pd.Series,
    b: pd.Series,
    *,
    alternative: str = TWO_SIDED,
    deterministic: bool = False,
    level: float = LEVEL,
    margin: float = 1.0,
) -> Comparison:
    """Is `a` (values indexed by seed) below `b`? See the module docstring for the verdicts.

    `margin` (a factor >= 1; timings: the measured noise floor, `bench.analysis.cost`): a seed
    counts as `a` lower only where a x margin < b (higher where b x margin < a); values within
    the margin of each other count as equal, as no difference on this machine."""
    a, b = _clean(a), _clean(b)
    one_sided = alternative == LESS
    if deterministic:
        x, y = (float(np.median(v)) if len(v) else math.nan for v in (a, b))
        if math.isnan(x) or math.isnan(y):
            return Comparison(0, 0, 0, 1.0, TOO_FEW, one_sided)
        if x == y or (margin > 1 and x * margin >= y and y * margin >= x):
            return Comparison(0, 0, 1, 1.0, EQUAL, one_sided)
        return Comparison(int(x < y), int(x > y), 0, 0.0 if x < y else 1.0,
                          EXACT if x < y else NOT_LOWER, one_sided)  # fmt: skip
    shared = a.index.intersection(b.index)
    x, y = a[shared], b[shared]
    below, above = int((x * margin < y).sum()), int((y * margin < x).sum())
    equal = len(shared) - below - above
    n = below + above
    p = sign_p(below, n, alternative)
    if n == 0:
        verdict = EQUAL if equal else TOO_FEW
    elif p <= level and below > above:
        verdict = CLEAR
    elif above == 0:  # every differing seed agrees: too few of them to reach the level
        verdict = SUGGESTIVE if n >= 2 else TOO_FEW
    elif below == 0:
        verdict = NOT_LOWER
    else:
        verdict = UNCLEAR
    return Comparison(below, above, equal, p, verdict, one_sided)


@dataclass(frozen=True)
class Ranking:
    """The method with the lowest median and what the rule says about it."""

    best: str
    estimate: Estimate
    equal: list[str]  # the same value as `best` in every shared seed
    ties: list[str]  # not separated from `best` (the seeds disagree)
    strength: str  # clear / suggestive / exact / unclear (ties) / too few seeds / "" (alone)
    others: dict[str, Comparison] = field(default_factory=dict)
    # With ties: the verdict of the group (best, equals, ties) against every other method,
    # seed by seed the group's lowest value against the other's: "the first is one of them".
    group_strength: str = ""

    @property
    def named(self) -> bool:
        """Does the rule name `best` (with its equals) ahead of every other method?"""
        return self.strength in LOWER

    @property
    def group(self) -> list[str]:
        return [self.best, *self.equal, *self.ties]

    @property
    def named_group(self) -> bool:
        """Is the group of tied methods ahead of every other method (a justified tie)?"""
        return bool(self.ties) and self.group_strength in LOWER


def ranked(
    per_seed: Mapping[str, pd.Series], *, deterministic: bool = False, margin: float = 1.0
) -> Ranking | None:
    """The method with the lowest median (ties of medians: the first listed), compared with
    every other by `compare` (with `margin`). None when every median is inf or missing."""
    est = {m: median_ci(_clean(v).to_numpy()) for m, v in per_seed.items()}
    finite = {m: e for m, e in est.items() if e.n and math.isfinite(e.median)}
    if not finite:
        return None
    names = list(per_seed)
    best = min(finite, key=lambda m: (finite[m].median, names.index(m)))
    others = {
        m: compare(per_seed[best], per_seed[m], deterministic=deterministic, margin=margin)
        for m in names
        if m != best
    }
    equal = [m for m, c in others.items() if c.verdict == EQUAL]
    rest = {m: c for m, c in others.items() if c.verdict != EQUAL}
    ties = [m for m, c in rest.items() if c.verdict in (UNCLEAR, NOT_LOWER)]
    strength = UNCLEAR if ties else _overall({c.verdict for c in rest.values()})
    group_strength = ""
    if ties:
        group = [best, *equal, *ties]
        lowest = pd.concat([_clean(per_seed[m]) for m in group], axis=1).min(axis=1)
        outside = [m for m in names if m not in group]
        group_strength = _overall(
            {
                compare(lowest, per_seed[m], deterministic=deterministic, margin=margin).verdict
                for m in outside
            }
        )
    return Ranking(best, est[best], equal, ties, strength, others, group_strength)


def _overall(verdicts: set[str]) -> str:
    """One method (or group) against several others: as strong as the weakest comparison."""
    if not verdicts:
        return ""
    if verdicts & {UNCLEAR, NOT_LOWER}:
        return UNCLEAR
    if TOO_FEW in verdicts:
        return TOO_FEW
    if verdicts <= {EXACT}:
        return EXACT
    if verdicts <= {CLEAR, EXACT}:
        return CLEAR
    return SUGGESTIVE


def paired_ratio(a: pd.Series, b: pd.Series) -> Estimate:
    """Median [interval] over shared seeds of a / b (e.g. an epoch's cost relative to GD)."""
    shared = a.index.intersection(b.index)
    r = a[shared].astype(float) / b[shared].astype(float)
    return median_ci(r.replace([np.inf, -np.inf], np.nan).to_numpy())


def rule_text(max_seeds: int) -> str:
    """The rule and what the run's seeds allow, in one sentence for a report's summary."""
    two = seeds_needed(TWO_SIDED)
    text = f"*clear*: sign test over paired seeds, p <= {LEVEL:g} two-sided; *suggestive*: all "
    text += (
        f"seeds agree ({max_seeds} can't reach {LEVEL:g}; {two} can)"
        if max_seeds < two
        else "seeds agree, p above the level"
    )
    return (
        text + "; `~`: seeds disagree (a verdict after it: the tied lead the rest); `=`: identical"
    )


def weakest(verdicts: Sequence[str]) -> str:
    """The weakest of several verdicts (a chain is as strong as its weakest comparison)."""
    for v in (NOT_LOWER, UNCLEAR, TOO_FEW, EQUAL, SUGGESTIVE, CLEAR, EXACT):
        if v in verdicts:
            return v
    return ""
