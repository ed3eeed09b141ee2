"""Web pages for sales and marketing, served by the read API (see router.py)."""

from services.projection.web.router import create_web_router

__all__ = ["create_web_router"]
