"""The one comparison rule (`bench.analysis.compare`): exact p-values, verdicts, its stated
error rate, rankings with ties and groups."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from bench.analysis import compare
from bench.analysis.compare import (
    CLEAR,
    EQUAL,
    EXACT,
    LESS,
    LEVEL,
    NOT_LOWER,
    SUGGESTIVE,
    TOO_FEW,
    TWO_SIDED,
    UNCLEAR,
    paired_ratio,
    ranked,
    sign_p,
)


def s(*values: float) -> pd.Series:
    return pd.Series(values, index=range(len(values)), dtype=float)


@pytest.mark.parametrize(
    ("below", "n", "alternative", "p"),
    [
        (5, 5, LESS, 1 / 32),
        (5, 5, TWO_SIDED, 2 / 32),
        (4, 5, LESS, 6 / 32),  # what "4 of 5 seeds agree" is worth: 19%
        (3, 3, LESS, 1 / 8),
        (3, 3, TWO_SIDED, 1 / 4),
        (6, 6, TWO_SIDED, 2 / 64),
        (0, 0, TWO_SIDED, 1.0),
        (1, 6, TWO_SIDED, 14 / 64),  # symmetric: one of six agreeing is as strong as five
    ],
)
def test_sign_test_p_values_are_exact(below, n, alternative, p):
    assert sign_p(below, n, alternative) == pytest.approx(p)


def test_seeds_needed_to_reach_the_level():
    assert compare.seeds_needed(TWO_SIDED) == 6
    assert compare.seeds_needed(LESS) == 5


@pytest.mark.parametrize("n", range(1, 11))
@pytest.mark.parametrize("alternative", [TWO_SIDED, LESS])
def test_the_stated_error_rate_holds_exactly(n, alternative):
    """No difference between two methods: every seed's sign is a fair coin. Over all 2^n
    equally likely sign patterns, "a is clearly lower" (one-sided) or "one of them is clearly
    lower" (two-sided, direction from the data) happens at most LEVEL of the time."""
    wrong = 0
    for signs in itertools.product((-1.0, 1.0), repeat=n):
        a, b = s(*signs), s(*[0.0] * n)
        hits = compare.compare(a, b, alternative=alternative).verdict == CLEAR
        if alternative == TWO_SIDED:
            hits = hits or compare.compare(b, a).verdict == CLEAR
        wrong += hits
    assert wrong / 2**n <= LEVEL


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "verdict"),
    [
        (s(1, 2, 3, 4, 5, 6), s(2, 3, 4, 5, 6, 7), {}, CLEAR),  # 6 of 6: p = 0.031
        (s(1, 2, 3, 4, 5), s(2, 3, 4, 5, 6), {}, SUGGESTIVE),  # 5 of 5 two-sided: 0.0625
        (s(1, 2, 3, 4, 5), s(2, 3, 4, 5, 6), {"alternative": LESS}, CLEAR),  # one-sided 0.031
        (s(1, 2, 3), s(4, 5, 6), {}, SUGGESTIVE),  # 3 seeds can never be clear
        (s(1, 6, 3), s(2, 5, 4), {}, UNCLEAR),  # the seeds disagree
        (s(4, 5, 6), s(1, 2, 3), {}, NOT_LOWER),
        (s(1, 2, 3), s(1, 2, 3), {}, EQUAL),
        (s(1), s(9), {}, TOO_FEW),  # one seed of a random problem: no claim
        (s(1, 2, 3), s(math.inf, math.inf, math.inf), {}, SUGGESTIVE),  # never is the worst
        (s(math.inf, 2, 3), s(math.inf, 5, 6), {}, SUGGESTIVE),  # both never: no information
        (s(math.inf, math.inf, 3), s(math.inf, math.inf, 6), {}, TOO_FEW),
        (s(1), s(9), {"deterministic": True}, EXACT),  # the seed changes nothing: compare
        (s(2), s(2), {"deterministic": True}, EQUAL),
    ],
)
def test_verdicts(a, b, kwargs, verdict):
    assert compare.compare(a, b, **kwargs).verdict == verdict


def test_comparison_pairs_by_seed_and_says_its_evidence():
    a = pd.Series([1.0, 2.0, 3.0, 9.0], index=[0, 1, 2, 7])
    b = pd.Series([2.0, 3.0, 4.0, 5.0, 6.0], index=[0, 1, 2, 3, 4])
    c = compare.compare(a, b, alternative=LESS)
    assert (c.below, c.above, c.equal) == (3, 0, 0)  # seed 7 has no pair
    assert c.evidence("a", "b") == "a lower in 3 of 3 seeds, sign test p = 0.12 (one-sided)"


def test_ranked_names_the_best_its_equals_and_its_ties():
    r = ranked({"gd": s(10, 11, 12), "sgd": s(9, 12, 13), "adam": s(1, 2, 3)})
    assert (r.best, r.estimate.median, r.ties, r.strength) == ("adam", 2.0, [], SUGGESTIVE)
    assert r.named
    r = ranked({"gd": s(29.7, 29.8, 29.9), "sgd": s(29.4, 29.9, 29.5)})
    assert (r.best, r.ties, r.strength, r.named) == ("sgd", ["gd"], UNCLEAR, False)
    r = ranked({"sgd": s(5, 5, 5), "sgd_wd": s(5, 5, 5), "gd": s(9, 9, 9)})
    assert (r.best, r.equal, r.strength) == ("sgd", ["sgd_wd"], SUGGESTIVE)
    assert ranked({"gd": s(math.inf, math.inf)}) is None


def test_a_tie_is_justified_when_the_group_leads_every_other_method():
    """nesterov and sgd swap places seed by seed, but one of them is ahead of momentum and gd
    in every seed: the group is named (as suggestive, with three seeds)."""
    per = {
        "nesterov": s(6, 6, 6),
        "sgd": s(3, 13, 7),
        "momentum": s(8, 14, 9),
        "gd": s(20, 30, 40),
    }
    r = ranked(per)
    assert (r.best, r.ties, r.group, r.group_strength) == (
        "nesterov", ["sgd"], ["nesterov", "sgd"], SUGGESTIVE,
    )  # fmt: skip
    assert r.named_group
    assert not r.named
    per["momentum"] = s(8, 5, 9)  # now momentum beats both in seed 1: it joins the tie
    r = ranked(per)
    assert (r.ties, r.group_strength) == (["sgd", "momentum"], SUGGESTIVE)  # ahead of gd


def test_deterministic_problems_compare_values_directly():
    r = ranked({"gd": s(43), "sgd": s(43), "momentum": s(77), "adam": s(98)}, deterministic=True)
    assert (r.best, r.equal, r.strength) == ("gd", ["sgd"], EXACT)
    r = ranked({"gd": s(43), "momentum": s(77)})  # the same values, a random problem
    assert r.strength == TOO_FEW


def test_paired_ratio_is_per_seed():
    r = paired_ratio(s(2, 4, 6), s(1, 2, 3))
    assert (r.median, r.lo, r.hi) == (2.0, 2.0, 2.0)


def test_rule_text_says_what_the_seeds_allow():
    assert "3 can't reach 0.05; 6 can" in compare.rule_text(3)
    assert "can't reach" not in compare.rule_text(10)
