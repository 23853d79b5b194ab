"""`liaison agency …`, `liaison user add --agency`, `liaison key create --agency` and
`liaison policy … --agency` (issue 17): the region kept from the command line, on the
database (agency, user, key) and through a running Liaison (policy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.load import default_policy_text
from service.access.auth import Role
from tests.api.test_agencies import west_policy
from tests.conftest import Server
from tests.factories import as_role
from tests.factories import liaison as liaison_as

pytestmark = pytest.mark.asyncio


async def test_agencies_people_and_keys_from_the_command_line(server: Server,
                                                               tmp_path: Path) -> None:
    db = ["--database-url", server.runtime.settings.database_url]
    west = tmp_path / "west.yaml"
    west.write_text(west_policy())
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text(default_policy_text())
    # A policy in another zone than the agency's is refused, saying both.
    code, _, err = await liaison_as("agency", "add", "west", "--name", "West County",
                                    "--timezone", "America/Chicago", "--policy",
                                    str(shipped), *db)
    assert code == 2 and "agency 'west' is in America/Chicago" in err, err
    code, _, err = await liaison_as("agency", "add", "West!", "--name", "x", "--timezone",
                                    "America/Chicago", *db)
    assert code == 2 and "id:" in err, err
    code, out, err = await liaison_as("agency", "add", "west", "--name", "West County",
                                      "--timezone", "America/Chicago", "--districts",
                                      "W1,W2", "--policy", str(west), *db)
    assert code == 0 and "agency west added (America/Chicago); its policy is published" \
        in out, err
    code, out, _ = await liaison_as("agency", "update", "default", "--name", "St. Pete",
                                    "--districts", "D1,D2", *db)
    assert code == 0
    code, out, _ = await liaison_as("agency", "list", *db)
    assert "default  name=St. Pete  timezone=America/New_York  districts=D1,D2" in out
    assert "west  name=West County  timezone=America/Chicago  districts=W1,W2" in out

    code, out, err = await liaison_as("user", "add", "wc-1", "--role", "dispatcher",
                                      "--agency", "west", "--generate-password", *db)
    assert code == 0 and "agency west" in out, err
    code, _, err = await liaison_as("user", "add", "nw-1", "--role", "dispatcher",
                                    "--agency", "nowhere", "--generate-password", *db)
    assert code == 2 and "no agency 'nowhere'" in err
    code, out, _ = await liaison_as("user", "list", *db)
    assert "username=wc-1  role=dispatcher  agency_id=west" in out
    code, out, err = await liaison_as("key", "create", "--client", "west-cad", "--agency",
                                      "west", *db)
    assert code == 0 and "agency west)" in out, err

    # The running server learns of the agency on its next poll; then its policy is read
    # with --agency.
    await server.runtime.region.sync(server.runtime.engine)
    url = ["--url", server.base_url]
    sup = as_role(server, Role.supervisor)
    code, out, err = await liaison_as("policy", "list", "--agency", "west", *url, env=sup)
    assert code == 0 and "west-county@1" in out and "st-petersburg-call" not in out, err
    code, out, _ = await liaison_as("policy", "list", *url, env=sup)
    assert "st-petersburg-call@1" in out and "west-county" not in out
