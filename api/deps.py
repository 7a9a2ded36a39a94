"""Typed dependencies of the routes: settings, store, variable store, paging."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from monitor.settings import Settings
from monitor.store.repository import Store
from monitor.store.variables import VariableStore


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_variables(request: Request) -> VariableStore:
    return request.app.state.variables


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
VariablesDep = Annotated[VariableStore, Depends(get_variables)]


class Page:
    """`limit`/`offset` paging with the hard maximum page size from settings."""

    def __init__(
        self,
        request: Request,
        limit: Annotated[
            int,
            Query(ge=1, description="Items per page (capped by HM_API_MAX_PAGE_SIZE).", examples=[100]),
        ] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.", examples=[0])] = 0,
    ) -> None:
        cap = request.app.state.settings.api_max_page_size
        if limit > cap:
            from api.errors import ProblemError

            raise ProblemError(422, f"limit must be at most {cap}", errors=[{"field": "query.limit"}])
        self.limit, self.offset = limit, offset


PageDep = Annotated[Page, Depends(Page)]
