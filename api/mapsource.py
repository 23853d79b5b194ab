"""Where the map on the board and the console gets its tiles (web/static/map.js).

The pages are shells drawn once at start, without the settings, so they ask for this.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Role, allow
from api.deps import RuntimeDep

router = APIRouter(prefix="/v1", tags=["program"], route_class=CredentialsFirst)


class MapSource(BaseModel):
    tiles: str | None = Field(description="tile URL template ({z}/{x}/{y}, {s} a subdomain);"
                                          " null: no tiles, a plain background")
    attribution: str = Field(description="what the tile provider asks to be credited, as text")


# Those who may open the board (api/board.py).
@router.get("/map", summary="The map's tile source (LIAISON_MAP_TILES), for the pages",
            dependencies=[allow(Role.call_team, Role.dispatcher, Role.supervisor)])
async def map_source(rt: RuntimeDep) -> MapSource:
    s = rt.settings
    return MapSource(tiles=s.map_tiles or None,
                     attribution=s.map_attribution if s.map_tiles else "")
