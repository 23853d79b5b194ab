"""The live feed: the board hub that fans board rows out to websockets, and the
websocket protocol."""
