"""Feature transforms serving applies before a model: declared by the model version.

A model trained on transformed inputs (log of income, upper-case categories) needs the same
transforms at serving time. They travel with the model version, as its registry tag
``serving_feature_transforms`` (``annual_income:log1p,home_ownership:upper``), not with one
server's configuration: a champion, a rollout candidate and a rollback each get their own, and a
change of the tag reaches every replica at the next alias poll without a restart
(:mod:`serving.registry`). The platform's own models carry all their preprocessing inside the
registered pipeline, so they declare none: a transform declared on one of them is applied on top
of what the model already does, every request still succeeds, and the answers are quietly wrong.
That is training/serving skew. The prediction log keeps the features as they were received, so
scoring them again offline with the same model shows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from platform_core.contract import TAG_SERVING_TRANSFORMS

Transform = Callable[[Any], Any]
# (feature, transform's name, transform), in the order they are applied.
Parsed = tuple[tuple[str, str, Transform], ...]


class Unreadable(ValueError):
    """A version declares transforms serving cannot apply: it cannot be served as declared."""

    def __init__(self, version: str, spec: str, problem: str) -> None:
        self.version, self.spec, self.problem = version, spec, problem
        super().__init__(
            f"version {version} declares {TAG_SERVING_TRANSFORMS}={spec!r}, which serving cannot "
            f"apply: {problem}"
        )


def declared(tags: Mapping[str, str] | None) -> str:
    """The transforms a version's tags declare (empty when it declares none)."""
    return (tags or {}).get(TAG_SERVING_TRANSFORMS, "").strip()


def _scale(factor: float) -> Transform:
    return lambda value: value * factor


_NAMED: dict[str, Transform] = {
    "log1p": lambda value: math.log1p(value) if value > -1 else math.nan,
    "upper": lambda value: value.upper(),
    "lower": lambda value: value.lower(),
    "strip": lambda value: value.strip(),
}


def parse(spec: str) -> list[tuple[str, str, Transform]]:
    """``feature:transform`` pairs, comma-separated; transforms: log1p, upper, lower, strip, or
    x<factor> (``x1000``). Raises ValueError naming what it cannot read."""
    parsed = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        feature, sep, name = item.partition(":")
        if not sep or not feature or not name:
            raise ValueError(f"{item!r} is not feature:transform")
        if name in _NAMED:
            parsed.append((feature, name, _NAMED[name]))
        elif name.startswith("x"):
            try:
                parsed.append((feature, name, _scale(float(name[1:]))))
            except ValueError:
                raise ValueError(f"{item!r}: x must be followed by a number") from None
        else:
            known = ", ".join([*_NAMED, "x<factor>"])
            raise ValueError(f"{item!r}: unknown transform {name!r} (known: {known})")
    return parsed


def apply(
    transforms: Sequence[tuple[str, str, Transform]], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """New records with the transforms applied; unknown (null) values stay null."""
    if not transforms:
        return records
    out = []
    for record in records:
        changed = dict(record)
        for feature, _name, transform in transforms:
            if changed.get(feature) is not None:
                changed[feature] = transform(changed[feature])
        out.append(changed)
    return out


def describe(transforms: Sequence[tuple[str, str, Transform]]) -> str:
    return ", ".join(f"{feature}:{name}" for feature, name, _ in transforms) or "none"
