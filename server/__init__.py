"""sandi's HTTP front end (``sandi serve``): the authority online.

A front end beside the command line (``cli/``), over the same library: it reads the
authority's registry and answers with what the library builds and signs. Only this
package imports the web framework (Starlette) and the server (uvicorn); the library
never does. See docs/operations.md ("The authority online") and ADR 0012.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["create_app", "run"]


def create_app() -> object:
    """The ASGI application (uvicorn's factory); configured from the environment."""
    from .app import create_app as create

    return create()


def run(
    *, host: str, port: int, workers: int, ssl_certfile: Path | None, ssl_keyfile: Path | None,
    forwarded_allow_ips: str | None,
) -> None:
    """Serve :func:`create_app` under uvicorn until stopped (``sandi serve`` calls this)."""
    import uvicorn

    uvicorn.run(
        "sandi_server:create_app", factory=True, host=host, port=port, workers=workers,
        ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
        ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
        forwarded_allow_ips=forwarded_allow_ips, proxy_headers=True,
        server_header=False, date_header=True,
        # header bytes per request (h11), idle keep-alive, and a ceiling on connections
        h11_max_incomplete_event_size=16 * 1024, timeout_keep_alive=5, limit_concurrency=1024,
        log_level="info", access_log=False,
    )
