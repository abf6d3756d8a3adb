"""Moving the champion alias changes the served model under load, without a failed request."""

from __future__ import annotations

import threading
import time

import httpx

from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES, set_champion
from tests.serving.conftest import Platform, wait_until_serving
from tests.support import wait_for

RECORDS = records_from_frame(data.generate(200, seed=61), TYPES.names)


class Load:
    """Client threads sending single-record requests until stopped; every answer is kept."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stride = threads
        self.answers: list[tuple[float, int, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,)) for i in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _send(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            index = offset
            while not self._stop.is_set():
                record = RECORDS[index % len(RECORDS)]
                try:
                    response = client.post("/predict", json={"records": [record]})
                except httpx.HTTPError as error:
                    self.answers.append((time.monotonic(), 0, repr(error)))
                else:
                    version = response.json().get("model_version") if response.is_success else None
                    self.answers.append((time.monotonic(), response.status_code, version))
                index += self.stride

    def versions_since(self, t: float) -> set[str | None]:
        return {version for at, _, version in list(self.answers) if at >= t}


def test_alias_move_under_load_swaps_version_and_no_request_fails(platform: Platform) -> None:
    settings = platform.settings
    try:
        with Load(platform.url) as load:
            wait_for(lambda: len(load.answers) > 20, 30, what="load to start")
            moved_at = time.monotonic()
            set_champion(settings, platform.v2)
            wait_for(
                lambda: platform.v2 in load.versions_since(moved_at),
                settings.alias_poll_interval_s + 30,
                what="the new version to answer",
            )
            swapped_after = (
                min(at for at, _, version in load.answers if version == platform.v2) - moved_at
            )
            settled = time.monotonic()
            wait_for(lambda: load.versions_since(settled + 0.5), 10, what="answers after swap")
        failed = [answer for answer in load.answers if answer[1] != 200]
        assert not failed, f"{len(failed)} of {len(load.answers)} failed, e.g. {failed[:3]}"
        assert {v for _, _, v in load.answers} == {platform.v1, platform.v2}
        assert load.versions_since(settled + 0.5) == {platform.v2}
        print(f"swap observed {swapped_after:.2f}s after the alias moved")
    finally:
        set_champion(settings, platform.v1)
        wait_until_serving(platform.settings, platform.v1)


def test_rollback_is_moving_the_alias_back(platform: Platform, http) -> None:
    record = RECORDS[:1]
    try:
        set_champion(platform.settings, platform.v2)
        wait_until_serving(platform.settings, platform.v2)
        set_champion(platform.settings, platform.v1)
        wait_until_serving(platform.settings, platform.v1)
        assert (
            http.post("/predict", json={"records": record}).json()["model_version"] == platform.v1
        )
    finally:
        set_champion(platform.settings, platform.v1)
        wait_until_serving(platform.settings, platform.v1)
