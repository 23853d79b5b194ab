"""HTTP and websocket routes."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from api import board, cad, calls, errors, health, policies, rejects, whatif

    errors.install(app)
    for module in (health, cad, rejects, calls, board, policies, whatif):
        app.include_router(module.router)
    from api.eido import router as eido_router
    app.include_router(eido_router)
    from api import pages, referrals
    app.include_router(referrals.router)
    app.include_router(pages.router)
    pages.mount(app)
