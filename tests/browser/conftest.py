"""Real-browser tests: Debian's headless Chromium, driven by Playwright, against pytest-django's live server.

Each test runs on a live server over the real PostgreSQL test database, so it is a transactional test. The
data migrations (roles, risk parameters, assets, KYC requirements) must survive the flush at the end of
each one, for these tests and for the transactional tests that run after them: every module here is
marked ``django_db(transaction=True, serialized_rollback=True)``.

Playwright's sync API runs an asyncio event loop in this thread and leaves it marked as running between
two calls. That has two effects on Django in the test's own code, both handled for exactly as long as
Playwright runs (from the first browser test to the package's teardown, after the last test's database
flush):

- Django's async-unsafe guard would refuse every query between two browser steps. No coroutine ever
  touches the database here (the loop only talks to the browser process; the live server has a thread
  and connections of its own), so ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set, and restored afterwards.
- ``django.db.connections`` keeps its connections per thread, but per async context while a loop is
  running: the test would quietly get a second connection, without the serialized copy of the data
  migrations, so the rollback would restore nothing and the flush would run the post_migrate handlers.
  The connections the test database was set up on are therefore put into the async context's slot too.

After Playwright stops, the loop is checked to be gone, so the tests after these run as before.
"""

import asyncio
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Browser, Page, sync_playwright

from accounts.models import User
from accounts.staff_auth import SECOND_FACTOR_SESSION_KEY

CHROMIUM_MISSING = "Chromium is not installed: apt-get install chromium"
TIMEOUT_MS = 15_000


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(items) -> None:
    """Without Chromium the browser tests are skipped, before any database is set up for them."""
    if chromium_path() is not None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=CHROMIUM_MISSING))


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for all the tests of this package; Playwright never downloads a browser."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        same_connections = {alias: connections[alias] for alias in connections}
        playwright = sync_playwright().start()
        try:
            for alias, connection in same_connections.items():
                connections[alias] = connection  # the async context's slot: see the module's docstring
            assert all(connections[alias] is connection for alias, connection in same_connections.items())
            chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
            yield chromium
            chromium.close()
        finally:
            playwright.stop()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop left behind: the async-unsafe guard is whole again for the tests after these
        else:
            pytest.fail("Playwright left an event loop marked as running in the test thread")


@pytest.fixture
def new_page(browser, live_server) -> Iterator[Callable[..., Page]]:
    """Open a page in a browser context of its own (its own cookies), optionally logged in as `user`."""
    contexts = []

    def open_page(user: User | None = None) -> Page:
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        if user is not None:
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": staff_session(user), "url": live_server.url}]
            )
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def staff_session(user: User) -> str:
    """The key of a staff session with both factors checked (the login page itself is tested on its own)."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[SECOND_FACTOR_SESSION_KEY] = timezone.now().isoformat()
    session.save()
    return session.session_key


def wrong_code(secret: str) -> str:
    """A 6-digit code the authenticator does not show now, nor just before or after."""
    totp = pyotp.TOTP(secret)
    now = timezone.now().timestamp()
    near = {totp.at(now, counter_offset=offset) for offset in range(-2, 3)}
    return next(code for code in ("000000", "123456", "654321", "999999") if code not in near)


def pytest_terminal_summary(terminalreporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if any(CHROMIUM_MISSING in str(report.longrepr) for report in skipped):
        terminalreporter.write_line(f"browser tests skipped: {CHROMIUM_MISSING}", yellow=True)
