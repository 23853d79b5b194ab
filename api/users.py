"""People's accounts, for supervisors: list, add, disable, reset a password. The same as
`liaison user …`, which also works before anyone can log in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Supervisor, record
from api.deps import RuntimeDep
from service.access import auth
from service.access.auth import PEOPLE_ROLES, Role
from service.errors import DomainError

router = APIRouter(prefix="/v1/users", tags=["users"], route_class=CredentialsFirst)

class Account(BaseModel):
    username: str
    display_name: str
    role: Role
    officer_id: str | None = None
    disabled_at: datetime | None = None
    created_at: datetime


class NewAccount(BaseModel):
    username: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Role
    display_name: str | None = Field(default=None, max_length=200)
    officer_id: str | None = Field(default=None, max_length=120)


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
    return [Account(**row) for row in await auth.list_users(rt.engine)]


@router.post("", status_code=201, summary="Add a person; a random password is returned once",
             responses={409: {"description": "the user name is taken"}})
async def add(body: NewAccount, request: Request, who: Supervisor, rt: RuntimeDep) -> Made:
    if body.role not in PEOPLE_ROLES:
        raise DomainError("CAD adapters use keys (`liaison key create`), not accounts")
    password = auth.new_password()
    await auth.add_user(rt.engine, body.username, body.role, password,
                        display_name=body.display_name, officer_id=body.officer_id)
    await record(request, who, "user.add", target=body.username,
                 detail={"username": body.username, "role": body.role.value})
    return Made(account=await _account(rt, body.username), password=password)


@router.post("/{username}/disable", summary="Stop a person logging in; ends their sessions",
             response_model=Disabled)
async def disable(username: str, request: Request, who: Supervisor,
                  rt: RuntimeDep) -> dict[str, Any]:
    done = await auth.disable_user(rt.engine, username)
    await record(request, who, "user.disable", target=username,
                 detail={"username": username, "sessions_ended": done["sessions_ended"]})
    return done


@router.post("/{username}/reset", summary="A new random password (returned once); "
             "re-enables the account and ends its sessions")
async def reset(username: str, request: Request, who: Supervisor, rt: RuntimeDep) -> Made:
    password = auth.new_password()
    done = await auth.reset_password(rt.engine, username, password)
    await record(request, who, "user.reset", target=username,
                 detail={"username": username, "sessions_ended": done["sessions_ended"]})
    return Made(account=await _account(rt, username), password=password)
