"""The console's static site and config on the local stack (devstack/console.py), no emulator."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devstack import console


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("outside")
    return tmp_path


def test_files_are_served_with_their_type_and_hashed_assets_are_immutable(dist: Path) -> None:
    status, headers, body = console.static("/assets/index-abc.js", dist)
    assert (status, body) == (200, b"console.log(1)")
    assert headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert "immutable" in headers["Cache-Control"]
    status, headers, body = console.static("/", dist)
    assert status == 200
    assert body.startswith(b"<!doctype html>")
    assert headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/customers/c_0123", "/kpis", "/merge-reviews/"])
def test_app_routes_fall_back_to_index_html(dist: Path, path: str) -> None:
    status, _, body = console.static(path, dist)
    assert status == 200
    assert b"id=root" in body


@pytest.mark.parametrize(
    "path", ["/assets/missing.js", "/favicon.ico", "/../secret.txt", "/%2e%2e/secret.txt"]
)
def test_missing_files_and_escapes_are_404_never_a_file_outside(dist: Path, path: str) -> None:
    status, _, body = console.static(path, dist)
    assert status == 404
    assert b"outside" not in body


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    status, _, body = console.static("/", tmp_path / "nothing")
    assert status == 503
    assert json.loads(body)["error"]["code"] == "console_not_built"


def _stack(**attrs: Any) -> Any:
    return SimpleNamespace(
        options=SimpleNamespace(region="eu-west-1"), moto_url="http://127.0.0.1:1", **attrs
    )


def test_config_json_points_at_the_same_origin_cognito_proxy() -> None:
    stack = _stack(staff_client_id="client-1", staff_pool_id="eu-west-1_abc")
    status, headers, body = console.serve(stack, "GET", "/console/config.json", [], b"")  # type: ignore[misc]
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {
        "apiBase": "",
        "auth": {
            "mode": "password",
            "cognitoEndpoint": "/__devstack/cognito",
            "clientId": "client-1",
            "userPoolId": "eu-west-1_abc",
            "region": "eu-west-1",
        },
    }
    # a stack without a staff pool still serves a config: the console loads and says so at sign-in
    served = console.serve(_stack(), "GET", "/console/config.json", [], b"")
    assert served is not None
    assert json.loads(served[2])["auth"]["clientId"] == ""


def test_routing_of_console_paths() -> None:
    stack = _stack()
    assert console.serve(stack, "GET", "/customers", [], b"") is None
    assert console.serve(stack, "GET", "/consoles", [], b"") is None
    assert console.serve(stack, "GET", "/console", [], b"") == (308, {"Location": "/console/"}, b"")
    assert console.serve(stack, "POST", "/console/x", [], b"")[0] == 405  # type: ignore[index]
    assert console.serve(stack, "GET", console.COGNITO_PATH, [], b"")[0] == 405  # type: ignore[index]
    missing_target = console.serve(stack, "POST", console.COGNITO_PATH, [("Content-Type", "x")], b"{}")
    assert missing_target is not None
    assert missing_target[0] == 400
