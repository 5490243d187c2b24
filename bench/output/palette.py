"""One colour and line style per method, the same in every figure (PNG and interactive).

Built-in methods have fixed colours; a weight-decay variant is dashed in its own colour so that
it stays visible where it lies on top of its parent (sgd_wd on sgd, adam_l2 on adam). Plug-in
methods (any name) take the next free colours in registration order, then in name order.
Methods are faceted by family (plain SGD family, Adam family, others) where one panel would
hold more than `MAX_LINES` lines.
"""

from __future__ import annotations

from collections.abc import Iterable

import optimizers

MAX_LINES = 6

FIXED = {
    "gd": "#1f77b4",  # blue
    "sgd": "#d62728",  # red
    "minibatch": "#ff7f0e",  # orange
    "momentum": "#2ca02c",  # green
    "nesterov": "#17becf",  # cyan
    "sgd_wd": "#8c564b",  # brown
    "adam": "#9467bd",  # purple
    "adamw": "#e377c2",  # pink
    "adam_l2": "#7f7f7f",  # grey
}
DASHED = {"sgd_wd", "adam_l2", "adamw"}
SPARE = [
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#a55194",
]
FAMILY_OF_RULE = {"sgd": "SGD family", "adam": "Adam family", "adamw": "Adam family"}
FAMILIES = ("SGD family", "Adam family", "other methods")


def colors(methods: Iterable[str] = ()) -> dict[str, str]:
    """Colour (hex) of every registered method and of `methods` (unregistered names last)."""
    out = dict(FIXED)
    extra = [m for m in optimizers.names() if m not in out]
    extra += sorted(m for m in set(methods) if m not in out and m not in extra)
    for i, m in enumerate(extra):
        out[m] = SPARE[i % len(SPARE)]
    return out


def color_of(method: str) -> str:
    return colors([method])[method]


def dash_of(method: str) -> str:
    """Matplotlib line style of a method's curve."""
    return "--" if method in DASHED else "-"


def family_of(method: str) -> str:
    if method in optimizers.METHODS:
        return FAMILY_OF_RULE.get(optimizers.get(method).rule, FAMILIES[-1])
    return FAMILIES[-1]


def order(methods: Iterable[str]) -> list[str]:
    """Methods in registration order (unregistered names last, sorted)."""
    present = set(methods)
    known = [m for m in optimizers.names() if m in present]
    return known + sorted(present - set(known))


def facets(methods: Iterable[str]) -> list[tuple[str, list[str]]]:
    """[(family, methods)]: one facet when everything fits in one panel, else one per family."""
    ms = order(methods)
    if len(ms) <= MAX_LINES:
        return [("", ms)]
    groups = {f: [m for m in ms if family_of(m) == f] for f in FAMILIES}
    return [(f, g) for f, g in groups.items() if g]
