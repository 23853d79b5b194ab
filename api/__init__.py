"""HTTP and websocket routes."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from api import (
        audit,
        board,
        cad,
        calls,
        errors,
        health,
        policies,
        rejects,
        session,
        users,
        whatif,
    )

    errors.install(app)
    for module in (health, session, audit, users, cad, rejects, calls, board, policies,
                   whatif):
        app.include_router(module.router)
    from api.eido import router as eido_router
    app.include_router(eido_router)
    from api import field
    app.include_router(field.router)
    from api import metrics
    app.include_router(metrics.router)
    from api import deliveries
    app.include_router(deliveries.router)
    from api import program
    app.include_router(program.router)
    from api import pages, referrals
    app.include_router(referrals.router)
    app.include_router(pages.router)
    pages.mount(app)
