"""The dashboard never shows the password in its store's target (SPEC 1): not in the page
header, nor in the errors of /healthz, the API and the pages when the store goes away."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from queuectl.web.app import create_app
from tests import pgtools
from tests.web.conftest import TOKEN

SECRET = "sekret-0042"


def test_the_header_masks_a_password_in_a_key_value_path(tmp_path: Path) -> None:
    target = f"{tmp_path}/host=db password={SECRET}/queuectl.db"
    with TestClient(create_app(target, TOKEN)) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert f'title="the store this dashboard reads">{tmp_path}/host=db password=***<' in page.text
    assert SECRET not in page.text


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_a_store_that_goes_away_is_reported_without_the_password(form: str) -> None:
    with contextlib.ExitStack() as database:
        url = database.enter_context(pgtools.fresh_database())
        # The server trusts local users: the password is given but not needed.
        server, _, name = url.rpartition("/")
        if form == "userinfo":
            target = server.replace("postgres@", f"postgres:{SECRET}@") + f"/{name}"
        else:
            target = f"{url}?password={SECRET}"
        with TestClient(create_app(target, TOKEN)) as client:
            page = client.get("/")
            assert page.status_code == 200
            assert "***" in page.text
            assert SECRET not in page.text
            database.close()  # the database is dropped under the running dashboard
            for path in ("/healthz", "/api/status", "/jobs/any"):
                response = client.get(path)
                assert response.status_code == 503, (path, response.text)
                assert name in response.text, response.text
                assert SECRET not in response.text
