"""Subscriptions to alerts: webhooks and e-mail, per site or for all sites."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.auth import WriterDep, require_site
from api.deps import StoreDep
from api.errors import ALL_ERRORS, ProblemError
from monitor.alerts.delivery import (
    SubscriptionError,
    create_subscription,
    delete_subscription,
    list_subscriptions,
    unsubscribe_by_token,
)

router = APIRouter(prefix="/api/v1", tags=["subscriptions"], responses=ALL_ERRORS)


class SubscriptionCreate(BaseModel):
    site: str | None = Field(
        None, description="Site id; omit for every site (admin only).", examples=["venice_historic_centre"]
    )
    min_severity: Literal["low", "moderate", "high", "severe"] = Field(
        "high", description="Lowest alert severity delivered.", examples=["high"]
    )
    channel: Literal["webhook", "email"] = Field(description="Delivery channel.", examples=["webhook"])
    target: str = Field(
        min_length=3,
        max_length=2000,
        description="The webhook's https URL or the e-mail address.",
        examples=["https://example.org/hooks/heritage"],
    )
    language: str = Field(
        "en", min_length=2, max_length=8, description="Language of the texts.", examples=["en"]
    )
    digest: bool = Field(False, description="E-mail only: one message a day instead of one per alert.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "site": "venice_historic_centre",
                    "min_severity": "high",
                    "channel": "webhook",
                    "target": "https://example.org/hooks/heritage",
                    "language": "en",
                }
            ]
        }
    }


SubscriptionIdPath = Annotated[
    str, Path(max_length=60, description="Subscription id", examples=["sub_5b0c7e2d9a1f4e3c8b6a"])
]
TokenQuery = Annotated[
    str,
    Query(
        min_length=8,
        max_length=200,
        description="The unsubscribe token of an e-mail's link",
        examples=["Jx3v9qfL2mZt8wQe"],
    ),
]


@router.get("/subscriptions", summary="List subscriptions")
def read_subscriptions(store: StoreDep, principal: WriterDep) -> dict:
    """Admins see every subscription; a manager sees those of its sites. Secrets are never returned."""
    subs = list_subscriptions(store)
    if principal.role != "admin":
        subs = [s for s in subs if s.site_id is not None and principal.may_manage(s.site_id)]
    return {"subscriptions": [asdict(s) for s in subs]}


@router.post("/subscriptions", status_code=201, summary="Subscribe a webhook or an e-mail address")
def add_subscription(body: SubscriptionCreate, store: StoreDep, principal: WriterDep) -> dict:
    """Create a subscription; a webhook's signing secret is in the answer, once."""
    if body.site is None:
        if principal.role != "admin":
            raise ProblemError(403, "only an admin may subscribe to every site")
    else:
        store.get_site(body.site)
        require_site(principal, body.site)
    try:
        sub, secret = create_subscription(
            store, body.site, body.min_severity, body.channel, body.target, body.language, digest=body.digest
        )
    except SubscriptionError as exc:
        raise ProblemError(422, str(exc)) from None
    return {**asdict(sub), "secret": secret}


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Remove a subscription")
def remove_subscription(subscription_id: SubscriptionIdPath, store: StoreDep, principal: WriterDep) -> None:
    """Delete a subscription and its queued messages (the address is erased)."""
    found = {s.id: s for s in list_subscriptions(store)}.get(subscription_id)
    if found is None:
        raise ProblemError(404, f"no subscription with id {subscription_id!r}")
    if found.site_id is None and principal.role != "admin":
        raise ProblemError(403, "only an admin may remove an all-site subscription")
    if found.site_id is not None:
        require_site(principal, found.site_id)
    delete_subscription(store, subscription_id)


@router.get("/subscriptions/unsubscribe", response_class=HTMLResponse, summary="Confirm unsubscribing")
def confirm_unsubscribe(token: TokenQuery) -> HTMLResponse:
    """The page an e-mail's unsubscribe link opens: a button that POSTs (mail scanners follow GET links)."""
    return HTMLResponse(
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Unsubscribe</title>"
        "<main><h1>Stop these alerts?</h1>"
        f"<form method='post' action='?token={_escape(token)}'>"
        "<button type='submit'>Unsubscribe</button></form></main></html>"
    )


@router.post("/subscriptions/unsubscribe", summary="Unsubscribe with the token of an e-mail link")
def unsubscribe(store: StoreDep, token: TokenQuery) -> dict:
    """Remove the subscription (and its e-mail address) that the token belongs to."""
    if not unsubscribe_by_token(store, token):
        raise ProblemError(404, "unknown or already used unsubscribe link")
    return {"status": "unsubscribed"}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
