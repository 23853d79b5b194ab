"""`liaison serve --eido-subscribe ws://...` end to end: a real child process subscribes to
a CAD played by a real WebSocket server, routes what it is sent, and unsubscribes when it
is stopped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.cli import _settings, build_parser
from tests.conftest import start_subprocess
from tests.factories import eido
from tests.fakes import FakeCad, Peer


def test_the_option_and_the_setting() -> None:
    args = build_parser().parse_args(["serve", "--eido-subscribe", "wss://cad.example/ent"])
    assert _settings(args).eido_subscribe == "wss://cad.example/ent"
    demo = build_parser().parse_args(["demo", "--eido-subscribe", "ws://127.0.0.1:9/ent"])
    assert _settings(demo).eido_subscribe == "ws://127.0.0.1:9/ent"
    assert _settings(build_parser().parse_args(["serve"])).eido_subscribe == ""
    with pytest.raises(ValidationError, match="ws:// or wss://"):
        _settings(build_parser().parse_args(["serve", "--eido-subscribe",
                                             "https://cad.example/ent"]))


@pytest.mark.asyncio
async def test_serve_subscribes_routes_and_unsubscribes(tmp_path: Path) -> None:
    incident = eido(unique="e2e", code="MNTL")

    async def cad_side(peer: Peer) -> None:
        await peer.accept("sub-e2e")
        ack = await peer.notify([incident], transaction="t-e2e", subscription="sub-e2e")
        assert ack == {"transactionId": "t-e2e", "statusCode": 200, "statusText": "OK"}
        peer.cad.mark("acked")
        await peer.serve_until_closed()

    cad = FakeCad(cad_side)
    async with cad.running():
        # Started in a thread: this loop plays the CAD meanwhile.
        sp = await asyncio.to_thread(
            start_subprocess, f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}", tmp_path,
            extra=["--eido-subscribe", cad.url])
        try:
            await cad.wait("acked", within=20)
            async with sp.client(timeout=10) as client:
                state = (await client.get("/v1/health")).json()["eido_subscriber"]
                assert state["connected"] and state["subscription_id"] == "sub-e2e"
                assert state["eidos_stored"] == 1
                # The board replays the decision the EIDO brought.
                async with sp.connect_board("?after=0") as board:
                    message = json.loads(await asyncio.wait_for(board.recv(), 10))
                assert message["type"] == "decision"
                call = (await client.get(f"/v1/calls/{message['call_id']}")).json()
            assert call["call"]["incident_id"] == incident["$id"]
            assert call["call"]["source"] == "eido"
            assert call["decision"]["destination"] == "call_team"
        finally:
            await asyncio.to_thread(sp.stop)
        # A graceful stop (uvicorn re-raises the SIGTERM once it has shut down).
        assert cad.unsubscribes == ["sub-e2e"], sp.log()
    cad.check()
