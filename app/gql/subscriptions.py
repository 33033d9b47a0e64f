from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from app.gql.context import Info
from app.gql.types.Health import Health
from app.services import health as health_service


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Health, now and then every `everySeconds` (1 to 3600) seconds."
    )
    async def health(self, info: Info, every_seconds: float = 5.0) -> AsyncGenerator[Health, None]:
        interval = min(max(every_seconds, 1.0), 3600.0)
        while True:
            yield Health.from_record(await health_service.check(embedded=info.context.embedded))
            await asyncio.sleep(interval)
