"""Credentials for Liaison's own command-line clients (policy, rejects, replay, simulate):
an API key from the environment, never from the command line (argv shows in `ps`)."""

from __future__ import annotations

import os

TOKEN_ENV = "LIAISON_TOKEN"


def auth_headers() -> dict[str, str]:
    """`Authorization: Bearer …` from LIAISON_TOKEN, or nothing (the server answers 401,
    and the command says to set it)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return {"authorization": f"Bearer {token}"} if token else {}


def unauthorised_hint(status: int) -> str | None:
    if status == 401:
        return (f"Liaison asks for credentials: set {TOKEN_ENV} to an API key "
                "(`liaison key create --client NAME --role ROLE`)")
    if status == 403:
        return f"the key in {TOKEN_ENV} has a role that may not do this"
    return None
