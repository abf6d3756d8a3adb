"""The labs' view of retrain runs holds the newest ones on a platform with hundreds of old runs.

Prefect's flow-run ids are random (uuid4) and its default order is by id, so reading "up to 200
runs" of a busy deployment used to return a random 200: a lab could miss the retrain it had
just started, and a reset could miss a queued one. Sixty old runs show the order cheaply: in id
order the newest run came first once in 61 reads.
"""

from __future__ import annotations

import asyncio
import time

from prefect.client.orchestration import PrefectClient
from prefect.states import Completed

from mlops_lab.lab_engine.kit import LabContext
from monitoring.receiver import RETRAIN_DEPLOYMENT
from platform_core.settings import Settings
from tests.support import platform_environment

OLD_RUNS = 60


def _create(settings: Settings, count: int) -> list:
    async def create() -> list:
        async with PrefectClient(settings.prefect_api_url) as client:
            deployment = await client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
            # Finished runs: the flows service never picks them up.
            return [
                await client.create_flow_run_from_deployment(
                    deployment.id, parameters={"reason": "old"}, state=Completed()
                )
                for _ in range(count)
            ]

    return asyncio.run(create())


def _delete(settings: Settings, runs: list) -> None:
    async def delete() -> None:
        async with PrefectClient(settings.prefect_api_url) as client:
            for run in runs:
                await client.delete_flow_run(run.id)

    asyncio.run(delete())


def test_the_newest_retrain_runs_come_first_however_many_there_are(platform: Settings) -> None:
    created = _create(platform, OLD_RUNS)
    try:
        time.sleep(1.5)
        since = time.time()
        newest = _create(platform, 1)[0]
        created.append(newest)
        ctx = LabContext(platform)
        with platform_environment(platform):
            assert ctx.retrain_runs()[0].id == newest.id
            assert [run.id for run in ctx.retrain_runs(since)] == [newest.id]
    finally:
        _delete(platform, created)
