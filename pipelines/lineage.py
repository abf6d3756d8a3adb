"""What a retrained version records about its data, and where it may be judged.

Plain names and no imports, so the flows' signatures can use them without loading the training
stack (see :func:`pipelines.flows.steps`).
"""

from __future__ import annotations

from typing import Literal

# Where a retrained challenger is judged: "holdout", a random quarter of its own training rows
# (mostly the old reference when traffic is scarce); "recent", the newest labelled traffic, kept
# out of training (an out-of-time slice of the population it will serve).
EvaluateOn = Literal["holdout", "recent"]

# Lineage of a retrain's traffic, tagged on the version: which labelled predictions it learned
# from (by the time they were logged) and what it was judged on.
TAG_TRAFFIC_ROWS = "traffic_rows"
TAG_TRAFFIC_SINCE = "traffic_since"
TAG_TRAFFIC_UNTIL = "traffic_until"
TAG_EVALUATED_ON = "evaluated_on"
# The version whose reference sample a retrain started from (absent when it learned from recent
# traffic only): a model's line can be followed back to where its data came from.
TAG_REFERENCE_OF = "reference_of"
