"""sandi's HTTP front end (``sandi serve``): the authority online.

A front end beside the command line (``cli/``), over the same library: it reads the
authority's registry and answers with what the library builds and signs. Only this
package imports the web framework (Starlette) and the server (uvicorn); the library
never does. See docs/operations.md ("The authority online") and ADR 0012.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app() -> object:
    """The ASGI application (uvicorn's factory); configured from the environment."""
    from .app import create_app as create

    return create()
