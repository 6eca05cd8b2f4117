"""Sampler names (the generator's `sampler=` strings) and `get_sampler`.
"""

from __future__ import annotations

from typing import Any

from kimbalance._validation import (
    invalid,
)
from kimbalance.data.samplers._base import Sampler
from kimbalance.data.samplers.class_balanced import ClassBalancedSampler
from kimbalance.data.samplers.multilabel import MultiLabelOverSampler
from kimbalance.data.samplers.power import (
    PowerSampler,
    ProgressiveSampler,
    SquareRootSampler,
)
from kimbalance.data.samplers.repeat_factor import RepeatFactorSampler
from kimbalance.data.samplers.resampling import (
    InstanceSampler,
    RandomOverSampler,
    RandomUnderSampler,
)

__all__ = ["SAMPLERS", "get_sampler"]


SAMPLERS: dict[str, type[Sampler]] = {
    "instance": InstanceSampler,
    "over": RandomOverSampler,
    "under": RandomUnderSampler,
    "class_balanced": ClassBalancedSampler,
    "sqrt": SquareRootSampler,
    "power": PowerSampler,
    "progressive": ProgressiveSampler,
    "multilabel": MultiLabelOverSampler,
    "repeat_factor": RepeatFactorSampler,
}


def get_sampler(identifier: Any, y: Any, *, seed: int = 0,
                batch_size: int | None = None, num_classes: int | None = None,
                **kwargs: Any) -> Sampler:
    """Builds a sampler from its name (the generator's `sampler=` names).

    Each sampler class lists the keyword arguments it takes in
    `keyword_arguments`; `batch_size` and `num_classes` are context (the
    generator's batch size and class count) and go only to the samplers
    that take them, so no caller needs to know which sampler takes what.

    Args:
        identifier: one of `"instance"`, `"over"`, `"under"`,
            `"class_balanced"`, `"sqrt"`, `"power"`, `"progressive"`,
            `"multilabel"`, `"repeat_factor"`, or a `Sampler` (returned as
            is).
        y: the targets.
        seed: int >= 0.
        batch_size: the block size of samplers that take one
            (`"class_balanced"`); ignored by the others.
        num_classes: the number of classes, for samplers that take it.
        **kwargs: the sampler's own keyword arguments (e.g.
            `sampling_strategy`, `power`, `num_epochs`).

    Returns:
        A `Sampler`.

    Raises:
        ValueError: for an unknown name, or keyword arguments the sampler
            does not take (named `sampler_kwargs`).

    Examples:

    >>> get_sampler("under", [0, 0, 0, 1]).epoch_class_counts().tolist()
    [1, 1]
    """
    if isinstance(identifier, Sampler):
        return identifier
    if not isinstance(identifier, str) or identifier not in SAMPLERS:
        raise invalid("sampler", f"one of {sorted(SAMPLERS)} or a Sampler object",
                      identifier)
    cls = SAMPLERS[identifier]
    unknown = sorted(set(kwargs) - set(cls.keyword_arguments))
    if unknown:
        raise invalid("sampler_kwargs", f"keyword arguments of {cls.__name__} "
                      f"(one of {list(cls.keyword_arguments)}; {unknown} are not)",
                      kwargs)
    context = {"batch_size": batch_size, "num_classes": num_classes}
    for name, value in context.items():
        if name in cls.keyword_arguments:
            kwargs.setdefault(name, value)
    return cls(y, seed=seed, **kwargs)
