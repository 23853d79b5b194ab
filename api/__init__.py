"""HTTP and websocket routes; api/app.py builds the application (the composition root)."""
