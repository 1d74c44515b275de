"""Projects as tenants: the TOML file, and one server keeping its projects apart (direct mode)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ledger.server.app import create_app
from ledger.server.credentials import ServerConfigError
from ledger.server.projects import ProjectConfig, load_projects, parse_projects
from ledger.server.registry import Projects, open_projects
from tests.buffer_helpers import APP_SECRET, WEB_SECRET, projects_toml
from tests.server_helpers import running_app


def test_a_projects_file_names_keys_secret_and_database(tmp_path: Path) -> None:
    path = tmp_path / "projects.toml"
    path.write_text(projects_toml("sqlite:///web.db", "sqlite:///app.db"))
    web, app = load_projects(str(path))
    assert (web.name, sorted(web.credentials.api_keys), web.db) == ("web", ["web-key-1"], "sqlite:///web.db")
    assert (app.name, sorted(app.credentials.api_keys), app.credentials.secret_key) == \
        ("app", ["app-key-1", "app-key-2"], APP_SECRET)


@pytest.mark.parametrize("text, complaint", [
    ("", "no [projects.NAME] table"),
    ("[projects", "not valid TOML"),
    ('[projects."a.b"]\napi_keys=["k"]\nsecret_key="s"\ndb="sqlite://"', "project name 'a.b'"),
    ('[projects.a]\napi_keys="k"\nsecret_key="s"\ndb="sqlite://"', "api_keys must be a list of strings"),
    ('[projects.a]\napi_keys=["k"]\ndb="sqlite://"', "secret_key and db must be strings"),
    ('[projects.a]\napi_keys=["k"]\nsecret_key="s"\ndb="sqlite://"\nport=1', "unknown setting 'port'"),
    ('[projects.a]\napi_keys=[]\nsecret_key="s"\ndb="sqlite://"', "no API key configured"),
    (f'[projects.a]\napi_keys=["{WEB_SECRET}"]\nsecret_key="{WEB_SECRET}"\ndb="sqlite://"',
     "must differ from every API key"),
    (f'[projects.a]\napi_keys=["k"]\nsecret_key="{WEB_SECRET}"\ndb="sqlite://"\n'
     f'[projects.b]\napi_keys=["k"]\nsecret_key="{APP_SECRET}"\ndb="sqlite://"', "API key 'k' is in projects 'a' and 'b'"),
])
def test_a_bad_projects_file_is_refused_saying_what_is_wrong(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "projects.toml"
    path.write_text(text)
    with pytest.raises(ServerConfigError, match=r"projects\.toml") as refused:
        load_projects(str(path))
    assert complaint in str(refused.value)


def test_a_missing_projects_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServerConfigError, match="cannot read"):
        load_projects(str(tmp_path / "absent.toml"))


@pytest.fixture
def two_projects(configs: list[ProjectConfig]) -> Iterator[str]:
    """A direct-mode server hosting the projects `web` and `app`, each on its own database."""
    with open_projects(configs) as projects, running_app(create_app(projects)) as url:
        yield url


def upload(url: str, api_key: str, *events: dict) -> httpx.Response:
    return httpx.post(f"{url}/2/httpapi", json={"api_key": api_key, "events": list(events)})


def test_the_same_device_in_two_projects_is_two_devices(two_projects: str) -> None:
    url = two_projects
    assert upload(url, "web-key-1", {"event_type": "a", "device_id": "device-1", "user_id": "user-Jane"}).json()["code"] == 200
    assert upload(url, "app-key-2", {"event_type": "b", "device_id": "device-1"}).json()["code"] == 200
    assert upload(url, "app-key-1", {"event_type": "c", "device_id": "device-1"}).json()["code"] == 200
    web = httpx.get(f"{url}/v1/identities", params={"device_id": "device-1"}, auth=("web-key-1", WEB_SECRET)).json()
    app = httpx.get(f"{url}/v1/identities", params={"device_id": "device-1"}, auth=("app-key-1", APP_SECRET)).json()
    assert (web["amplitude_id"], web["user_id"]) == (1, "user-Jane")
    assert (app["amplitude_id"], app["user_id"]) == (1, None)  # numbered apart, no user ID
    assert httpx.get(f"{url}/v1/stats", auth=("app-key-2", APP_SECRET)).json()["events"] == 2
    assert httpx.get(f"{url}/v1/identities", params={"user_id": "user-Jane"},
                     auth=("app-key-2", APP_SECRET)).status_code == 404


def test_each_project_answers_only_its_own_keys(two_projects: str) -> None:
    url = two_projects
    reply = upload(url, "no-such-key", {"event_type": "a", "device_id": "device-1"})
    assert (reply.status_code, reply.content) == (400, b'{"code":400,"error":"Invalid API key: no-such-key"}')
    for auth in [("web-key-1", APP_SECRET), ("app-key-1", WEB_SECRET), ("no-such-key", WEB_SECRET)]:
        assert httpx.get(f"{url}/v1/stats", auth=auth).status_code == 401
    segment = httpx.post(f"{url}/v1/batch", json={"batch": [{"type": "track", "event": "e", "anonymousId": "dev-9"}]},
                         auth=("app-key-2", ""))
    assert segment.status_code == 200
    assert httpx.get(f"{url}/v1/stats", auth=("app-key-1", APP_SECRET)).json()["events"] == 1
    assert httpx.get(f"{url}/v1/stats", auth=("web-key-1", WEB_SECRET)).json()["events"] == 0
    assert httpx.get(f"{url}/healthz").json() == {"code": 200, "status": "ok"}


def test_the_one_project_shorthand_needs_keys_and_secret() -> None:
    with pytest.raises(ServerConfigError):
        Projects.single(None, [], WEB_SECRET)


def test_a_body_write_key_selects_its_project(two_projects: str) -> None:
    url = two_projects
    message = {"event": "e", "anonymousId": "dev-7", "writeKey": "web-key-1"}
    assert httpx.post(f"{url}/v1/track", json=message).status_code == 200
    assert httpx.post(f"{url}/v1/track", json={**message, "writeKey": "no-such-key"}).status_code == 401
    assert httpx.get(f"{url}/v1/stats", auth=("web-key-1", WEB_SECRET)).json()["events"] == 1
    assert httpx.get(f"{url}/v1/stats", auth=("app-key-1", APP_SECRET)).json()["events"] == 0


def test_explorer_and_metrics_are_served_for_one_project_only(two_projects: str, configs: list[ProjectConfig]) -> None:
    for path in ["/ui/", "/metrics"]:
        assert httpx.get(f"{two_projects}{path}", auth=("web-key-1", WEB_SECRET)).status_code == 404
    web, _ = configs
    with open_projects([web]) as projects, running_app(create_app(projects)) as url:
        assert upload(url, "web-key-1", {"event_type": "a", "device_id": "device-1"}).status_code == 200
        assert httpx.get(f"{url}/ui/", auth=("web-key-1", WEB_SECRET)).status_code == 200
        assert httpx.get(f"{url}/ui/", auth=("app-key-1", APP_SECRET)).status_code == 401
        assert "ledger_" in httpx.get(f"{url}/metrics").text


def _two_on(web_db: str, app_db: str) -> list[ProjectConfig]:
    return parse_projects(tomllib.loads(projects_toml(web_db, app_db)), "projects.toml")


def test_two_projects_on_one_database_are_refused_before_anything_opens(
        new_url: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = new_url()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    spellings = [(url, url), ("sqlite:///web.db", f"sqlite:///{tmp_path}/sub/../web.db")]
    for web_db, app_db in spellings:
        with pytest.raises(ServerConfigError, match="projects 'web' and 'app' use the same database"):
            _two_on(web_db, app_db)
    assert not (tmp_path / "web.db").exists()
    with pytest.raises(ServerConfigError, match="use the same database"):  # the Python API checks too
        with open_projects([ProjectConfig("web", _two_on(url, "sqlite://")[0].credentials, url),
                            ProjectConfig("app", _two_on(url, "sqlite://")[1].credentials, url)]):
            pass
    assert len(_two_on("sqlite://", "sqlite://")) == 2  # private scratch databases are each their own


def test_a_secret_key_holding_another_projects_api_key_is_refused() -> None:
    mobile = "app-key-of-the-mobile-app-2026"
    text = projects_toml("sqlite:///web.db", "sqlite:///app.db").replace('"app-key-2"', f'"{mobile}"')
    parse_projects(tomllib.loads(text))
    for secret in [mobile, f" {mobile.upper()} ", f"{WEB_SECRET}-app-key-1"]:
        with pytest.raises(ServerConfigError, match=r"\[projects.web\]: the secret key must differ from every API key"):
            parse_projects(tomllib.loads(text.replace(WEB_SECRET, secret, 1)), "projects.toml")
