"""Fixtures the end-to-end tests of the admin pages share."""

from dataclasses import replace

import pytest

from proxy.app import create_app
from tests.conftest import RunningProxy
from tests.e2e.test_admin_api import ADMIN_TOKEN


@pytest.fixture
async def dashboard_proxy(aiohttp_server, engine, database_url, proxy_settings):
    app = create_app(replace(proxy_settings, admin_token=ADMIN_TOKEN), database_url)
    server = await aiohttp_server(app)
    return RunningProxy(str(server.make_url("")).rstrip("/"), app, proxy_settings)
