"""Rollback's two activities: record a deployment that completed healthy as its resource group's
"last good" one, and read that record back when a later deployment fails. Both only touch the content store,
so the workflow runs them as local activities. See ``services.last_good``."""

from __future__ import annotations

import asyncio

from temporalio import activity

from contract.models import (
    ActivityName,
    LastGoodDeployment,
    LastGoodLookup,
    LastGoodQuery,
    RecordLastGoodInput,
)
from services.codec import KeyRing
from services.content_store import BlobStore
from services.last_good import LastGoodStore, last_good_record, open_last_good

from .errors import classified


class RollbackActivities:
    def __init__(self, store: BlobStore) -> None:
        self._store = store

    @activity.defn(name=ActivityName.RECORD_LAST_GOOD)
    async def record_last_good(self, inp: RecordLastGoodInput) -> LastGoodDeployment:
        async with classified():
            record = await asyncio.to_thread(last_good_record, inp, self._store, KeyRing.from_environment())
            await asyncio.to_thread(LastGoodStore(self._store).save, record)
        return record

    @activity.defn(name=ActivityName.LOAD_LAST_GOOD)
    async def load_last_good(self, query: LastGoodQuery) -> LastGoodLookup:
        try:
            record = await asyncio.to_thread(
                LastGoodStore(self._store).load, query.subscription_id, query.resource_group
            )
            if record is not None:
                record = await asyncio.to_thread(open_last_good, record, self._store, KeyRing.from_environment())
        except Exception as exc:  # unreadable or missing documents: the rollback says so, the failure stands
            return LastGoodLookup(problem=f"the last good record could not be read: {exc}")
        if record is None:
            return LastGoodLookup(
                problem=f"no deployment of resource group {query.resource_group} has completed healthy through "
                "this orchestrator (with this content store) yet, so there is nothing to roll back to"
            )
        return LastGoodLookup(record=record)
