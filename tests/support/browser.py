"""Debian's Chromium driven by Playwright: no browser download is possible on these machines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling out, and the closed network
# refuses each call.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@asynccontextmanager
async def russian_page(width: int = 1440, height: int = 900) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page in Russian (desktop-sized unless told: 375 x 812 is a phone), and the JavaScript
    errors it raises while open."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": width, "height": height}, locale="ru-RU",
                                                is_mobile=width < 600, has_touch=width < 600)
            page = await context.new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            await browser.close()
