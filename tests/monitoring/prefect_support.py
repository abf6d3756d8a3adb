"""The real `retrain/retrain` deployment on a test Prefect server, without a runner serving it.

Its runs stay scheduled: the receiver tests check that the right runs are created, the
end-to-end test (with the `flows` service) that they really retrain.
"""

from __future__ import annotations

import asyncio

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType

from monitoring.receiver import RETRAIN_DEPLOYMENT
from platform_core.settings import Settings
from tests.support import prefect_api


def create_retrain_deployment(settings: Settings) -> None:
    from pipelines.flows import retrain

    with prefect_api(settings):
        deployment = retrain.to_deployment("retrain", entrypoint_type=EntrypointType.MODULE_PATH)
        # Async-dispatched, so typed as maybe a coroutine; called from sync code it is not.
        deployment.apply()  # pyright: ignore[reportAttributeAccessIssue]


def remove_retrain_deployment(settings: Settings) -> None:
    async def remove() -> None:
        async with PrefectClient(settings.prefect_api_url) as client:
            try:
                deployment = await client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
            except ObjectNotFound:
                return
            await client.delete_deployment(deployment.id)

    asyncio.run(remove())


def retrain_runs(settings: Settings) -> list[FlowRun]:
    """Every run of the retrain deployment, newest first."""

    async def read() -> list[FlowRun]:
        async with PrefectClient(settings.prefect_api_url) as client:
            deployment = await client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )

    return asyncio.run(read())
