"""The platform's trust list covers every model its own pipeline makes, so the list cannot go
stale unnoticed (platform_core/model_trust.py says how to regenerate it)."""

from __future__ import annotations

import pytest
import skops.io

from pipelines import data, training
from platform_core.contract import FeatureTypes
from platform_core.model_trust import PLATFORM_TRUSTED_TYPES
from tests.models import TYPES

# A learner's CSV may have only numeric or only categorical features: one transformer is empty.
FEATURE_SETS = {
    "numeric and categorical": TYPES,
    "numeric only": FeatureTypes({n: "numeric" for n in TYPES.numeric}, TYPES.target),
    "categorical only": FeatureTypes({n: "categorical" for n in TYPES.categorical}, TYPES.target),
}


@pytest.mark.parametrize("features", FEATURE_SETS)
def test_the_pipelines_model_needs_no_type_outside_the_trust_list(features: str) -> None:
    types = FEATURE_SETS[features]
    parts = training.split(data.generate(600, "baseline", seed=3), types, seed=3)
    model = training.build_pipeline(types, seed=3).fit(parts.X_train, parts.y_train)

    needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))

    assert set(needed) <= set(PLATFORM_TRUSTED_TYPES)
