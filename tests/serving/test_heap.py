"""After a model load the serving worker's long-lived heap is out of the garbage collector's view.

A full collection walked ~270,000 long-lived objects (the libraries and the model): a 150 ms pause
with the GIL held, every few thousand requests, which was serving's p99 at 200 requests/s in
`make bench`. The watcher freezes the heap after each load (`gc.freeze`).
"""

from __future__ import annotations

import gc

from serving.registry import ChampionWatcher
from tests.serving.conftest import Platform


def test_a_model_load_freezes_the_long_lived_heap(platform: Platform) -> None:
    gc.unfreeze()
    watcher = ChampionWatcher(platform.settings)
    try:
        watcher.poll()  # loads the champion, as the worker's first poll does
        assert watcher.current is not None and watcher.current.version == platform.v1
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
