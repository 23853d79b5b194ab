"""`liaison units …` against a running Liaison: the roster kept from the command line,
through the API (audited, told to the board), with the key in LIAISON_TOKEN."""

from __future__ import annotations

import pytest

from service.access.auth import Role
from service.access.client_auth import TOKEN_ENV
from tests.conftest import Server
from tests.factories import as_role
from tests.factories import liaison as liaison_as

pytestmark = pytest.mark.asyncio


async def test_list_add_duty_and_retention(server: Server) -> None:
    url = ["--url", server.base_url]
    sup = as_role(server, Role.supervisor)
    code, _, err = await liaison_as("units", "list", *url)
    assert code == 2 and f"set {TOKEN_ENV}" in err, err
    code, out, _ = await liaison_as("units", "list", *url, env=sup)
    assert code == 0 and "no units on the roster" in out

    code, out, err = await liaison_as(
        "units", "add", "CALL-3", "--program", "call", "--call-sign", "CALL 3",
        "--member", "A. Rivera", "--member", "J. Okafor", "--capability", "clinician",
        "--capability", "youth_trained", *url, env=sup)
    assert code == 0, err
    assert out.startswith("added CALL-3") and "off duty" in out
    assert "[clinician,youth_trained]" in out and "A. Rivera; J. Okafor" in out
    # A team member signs it on; a dispatcher may not change the roster.
    code, out, err = await liaison_as("units", "duty", "CALL-3", "on", *url,
                                      env=as_role(server, Role.call_team))
    assert code == 0 and "available" in out and "on duty since" in out, err
    code, _, err = await liaison_as("units", "add", "CALL-4", "--program", "call", *url,
                                    env=as_role(server, Role.dispatcher))
    assert code == 2 and "may not do this" in err
    # Bad input names the field.
    code, _, err = await liaison_as("units", "add", "CALL-4", "--program", "nowhere", *url,
                                    env=sup)
    assert code == 1 and "program_id: not a program of the policy in force" in err, err
    code, _, err = await liaison_as("units", "duty", "CALL-9", "off", *url, env=sup)
    assert code == 2 and "no unit CALL-9" in err

    code, out, _ = await liaison_as("units", "list", "--program", "call", *url, env=sup)
    assert code == 0 and out.count("\n") == 1 and out.startswith("CALL-3")
    code, out, _ = await liaison_as("units", "retention", *url, env=sup)
    assert code == 0 and "kept 24 h (the default)" in out
    code, out, _ = await liaison_as("units", "retention", "--hours", "6", *url, env=sup)
    assert code == 0 and "kept 6 h (set by" in out
    r = await server.client.get("/v1/units")
    assert [u["on_duty"] for u in r.json()["units"]] == [True]
