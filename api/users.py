"""People's accounts, for supervisors: list, add, disable, reset a password. The same as
`liaison user …`, which also works before anyone can log in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Principal, Supervisor, record
from api.deps import RuntimeDep
from service.access import auth
from service.access.auth import PEOPLE_ROLES, Role
from service.calls.visibility import sees_agency
from service.errors import DomainError, Forbidden, NotFound
from service.store.tables import ANY_AGENCY, DEFAULT_AGENCY

router = APIRouter(prefix="/v1/users", tags=["users"], route_class=CredentialsFirst)

class Account(BaseModel):
    username: str
    display_name: str
    role: Role
    officer_id: str | None = None
    agency: str = Field(validation_alias="agency_id", description="whose calls they see; "
                        "'*': every agency's")
    disabled_at: datetime | None = None
    created_at: datetime


class NewAccount(BaseModel):
    username: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Role
    display_name: str | None = Field(default=None, max_length=200)
    officer_id: str | None = Field(default=None, max_length=120)
    agency: str | None = Field(default=None, min_length=1, max_length=40, description=(
        "the agency whose calls they see; '*': every agency's (a regional supervisor "
        "only). Default: yours"))


class Made(BaseModel):
    account: Account
    password: str = Field(description="shown once; give it to the person, who should change it")


class Disabled(BaseModel):
    username: str
    disabled: bool
    sessions_ended: int = Field(description="its sessions (and boards) ended now")


async def _account(rt: Any, username: str) -> Account:
    for row in await auth.list_users(rt.engine):
        if row["username"] == username:
            return Account(**row)
    raise AssertionError("the account was just written")


@router.get("", summary="Every account, its role and whether it is disabled")
async def list_accounts(who: Supervisor, rt: RuntimeDep) -> list[Account]:
    # A supervisor of one agency keeps its people only (issue 17).
    return [Account(**row) for row in await auth.list_users(rt.engine)
            if sees_agency(who, row["agency_id"])]


async def _own(request: Request, who: Principal, rt: Any, username: str,
               action: str) -> None:
    """Another agency's person is 'not found' to a supervisor of one agency (audited)."""
    for row in await auth.list_users(rt.engine):
        if row["username"] == username and not sees_agency(who, row["agency_id"]):
            await record(request, who, action, outcome="denied", target=username)
            raise NotFound(f"no user {username!r}")


@router.post("", status_code=201, summary="Add a person; a random password is returned once",
             responses={409: {"description": "the user name is taken"}})
async def add(body: NewAccount, request: Request, who: Supervisor, rt: RuntimeDep) -> Made:
    if body.role not in PEOPLE_ROLES:
        raise DomainError("CAD adapters use keys (`liaison key create`), not accounts")
    agency = body.agency or (who.agency if who.agency != ANY_AGENCY else DEFAULT_AGENCY)
    if not sees_agency(who, agency) or (agency == ANY_AGENCY and who.agency != ANY_AGENCY):
        raise Forbidden("a supervisor adds people to their own agency only")
    password = auth.new_password()
    await auth.add_user(rt.engine, body.username, body.role, password,
                        display_name=body.display_name, officer_id=body.officer_id,
                        agency=agency)
    await record(request, who, "user.add", target=body.username,
                 detail={"username": body.username, "role": body.role.value})
    return Made(account=await _account(rt, body.username), password=password)


@router.post("/{username}/disable", summary="Stop a person logging in; ends their sessions",
             response_model=Disabled)
async def disable(username: str, request: Request, who: Supervisor,
                  rt: RuntimeDep) -> dict[str, Any]:
    await _own(request, who, rt, username, "user.disable")
    done = await auth.disable_user(rt.engine, username)
    await record(request, who, "user.disable", target=username,
                 detail={"username": username, "sessions_ended": done["sessions_ended"]})
    return done


@router.post("/{username}/reset", summary="A new random password (returned once); "
             "re-enables the account and ends its sessions")
async def reset(username: str, request: Request, who: Supervisor, rt: RuntimeDep) -> Made:
    await _own(request, who, rt, username, "user.reset")
    password = auth.new_password()
    done = await auth.reset_password(rt.engine, username, password)
    await record(request, who, "user.reset", target=username,
                 detail={"username": username, "sessions_ended": done["sessions_ended"]})
    return Made(account=await _account(rt, username), password=password)
