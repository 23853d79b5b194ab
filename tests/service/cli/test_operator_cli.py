"""`liaison rejects list|show|resubmit` against a running Liaison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.access.auth import Role
from service.access.client_auth import TOKEN_ENV
from tests.conftest import Server
from tests.factories import as_role, event, liaison

pytestmark = pytest.mark.asyncio


async def test_an_operator_lists_shows_and_resubmits_a_reject(server: Server,
                                                            tmp_path: Path) -> None:
    bad = event(channel="pager")
    reject_id = (await server.client.post("/v1/cad/events", json=bad)).json()["reject_id"]
    env = as_role(server, Role.supervisor)

    # Without a key, or with a key whose role may not read rejects: it says what to do.
    code, _, err = await liaison("rejects", "list", "--url", server.base_url)
    assert code == 2 and f"set {TOKEN_ENV}" in err, err
    code, _, err = await liaison("rejects", "list", "--url", server.base_url,
                                 env=as_role(server, Role.analyst))
    assert code == 2 and "may not do this" in err, err

    code, out, _ = await liaison("rejects", "list", "--url", server.base_url, env=env)
    assert code == 0
    assert "1 rejected input(s)" in out and f"#{reject_id}" in out and "channel:" in out

    code, out, _ = await liaison("rejects", "show", str(reject_id), "--url", server.base_url,
                                 env=env)
    assert code == 0 and '"pager"' in out

    code, _, err = await liaison("rejects", "resubmit", str(reject_id), "--url",
                                 server.base_url, env=env)
    assert code == 2 and "channel:" in err

    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**bad, "channel": "911"}))
    code, out, _ = await liaison("rejects", "resubmit", str(reject_id), "--corrected",
                                 str(fixed), "--url", server.base_url, env=env)
    assert code == 0 and "accepted: call" in out and "call_team" in out

    code, _, err = await liaison("rejects", "show", "424242", "--url", server.base_url,
                                 env=env)
    assert code == 2 and "no reject 424242" in err


async def test_an_unreachable_service_is_a_clear_error() -> None:
    code, _, err = await liaison("rejects", "list", "--url", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach Liaison" in err
