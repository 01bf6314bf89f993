"""agents.settings: defaults, YAML file, SLAMON_* overrides, errors that name their source."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agents.settings import ENV_VARS, Settings, SettingsError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slamon.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_states_the_defaults() -> None:
    assert load_settings(REPO_ROOT / "config" / "slamon.yaml", environ={}) == Settings()


def test_the_shipped_config_documents_every_variable() -> None:
    text = (REPO_ROOT / "config" / "slamon.yaml").read_text()
    assert [v for v in ENV_VARS.values() if v not in text] == []
    assert set(ENV_VARS) == {f.name for f in dataclasses.fields(Settings)}


def test_without_a_file_the_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config/slamon.yaml here
    assert load_settings(environ={}) == Settings()


def test_file_then_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "partitions: 8\nstore: memory://\ntopic_prefix: x.\n")
    settings = load_settings(path, environ={"SLAMON_PARTITIONS": "12", "SLAMON_LATENESS": "5"})
    assert (settings.partitions, settings.store, settings.topic_prefix) == (12, "memory://", "x.")
    assert settings.lateness == 5.0
    assert settings.topics.events == "x.events"
    assert settings.topics.partitions == 12


def test_types(tmp_path: Path) -> None:
    env = {
        "SLAMON_TICK_INTERVAL": "0.25",
        "SLAMON_WEB_PORT": "7000",
        "SLAMON_DATA_DIR": "/var/lib/slamon",
        "SLAMON_POLICIES": "p.yaml",
        "SLAMON_LOG_LEVEL": "WARNING",
    }
    settings = load_settings(_write(tmp_path, ""), environ=env)
    assert settings.tick_interval == 0.25 and settings.web_port == 7000
    assert settings.data_dir == Path("/var/lib/slamon") and settings.policies == Path("p.yaml")
    assert settings.log_level == "warning"


@pytest.mark.parametrize(
    ("raw", "normalised", "servers"),
    [
        ("kafka://127.0.0.1:9092", "kafka://127.0.0.1:9092", ["127.0.0.1:9092"]),
        ("broker:19092", "kafka://broker:19092", ["broker:19092"]),
        ("kafka://a:1;kafka://b:2", "kafka://a:1;kafka://b:2", ["a:1", "b:2"]),
        ("a:1, b:2", "kafka://a:1;kafka://b:2", ["a:1", "b:2"]),
    ],
)
def test_broker_forms(raw: str, normalised: str, servers: list[str]) -> None:
    settings = load_settings(Path("/dev/null"), environ={"SLAMON_BROKER": raw})
    assert settings.broker == normalised
    assert settings.bootstrap_servers == servers


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SLAMON_BROKER", "http://x:1", "'http://x:1' is not kafka://HOST:PORT"),
        ("SLAMON_BROKER", "kafka://x", "'kafka://x' is not kafka://HOST:PORT"),
        ("SLAMON_BROKER", "kafka://x:99999", "'kafka://x:99999' is not kafka://HOST:PORT"),
        ("SLAMON_PARTITIONS", "four", "'four' is not an integer"),
        ("SLAMON_PARTITIONS", "0", "0 is out of range 1..10000"),
        ("SLAMON_STORE", "redis://", "'redis://' is not one of rocksdb://, memory://"),
        ("SLAMON_TICK_INTERVAL", "0", "0 must be > 0"),
        ("SLAMON_TICK_INTERVAL", "soon", "'soon' is not a number of seconds"),
        ("SLAMON_TICK_INTERVAL", "nan", "'nan' is not a finite number of seconds"),
        ("SLAMON_LATENESS", "-1", "-1 must be >= 0"),
        ("SLAMON_WEB_PORT", "70000", "70000 is out of range 1..65535"),
        ("SLAMON_TOPIC_PREFIX", "sla/", "'sla/' may contain only letters, digits"),
        ("SLAMON_APP_ID", "", "must not be empty"),
        ("SLAMON_LOG_LEVEL", "loud", "'loud' is not one of debug, info, warning, error"),
    ],
)
def test_a_bad_variable_is_named(variable: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Path("/dev/null"), environ={variable: value})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{variable}: {reason}")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "app_id: slamon\npartitions: many\nstroe: memory://\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"SLAMON_WEB_PORT": "x"})
    problems = caught.value.problems
    assert problems[0] == f"{path}:3: stroe: unknown setting (known: app_id, broker, " + (
        "policies, partitions, replication_factor, store, data_dir, tick_interval, lateness, "
        "max_future, session_timeout, heartbeat_interval, worker_id, broker_unreachable_after, "
        "web_host, web_port, topic_prefix, log_level, portal_tokens"
    ) + "".join(f", {key}" for key in list(ENV_VARS)[list(ENV_VARS).index("portal_tokens") + 1:]
                ) + ")"
    assert f"{path}:2: partitions: 'many' is not an integer" in problems
    assert "SLAMON_WEB_PORT: 'x' is not an integer" in problems
    assert len(problems) == 3


def test_an_environment_variable_hides_a_bad_file_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "partitions: many\n")
    assert load_settings(path, environ={"SLAMON_PARTITIONS": "2"}).partitions == 2


def test_a_yaml_boolean_is_not_an_integer(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r":1: partitions: True is not an integer"):
        load_settings(_write(tmp_path, "partitions: true\n"), environ={})


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"missing\.yaml: cannot read"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_the_file_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"expected a mapping of settings, got"):
        load_settings(_write(tmp_path, "- partitions\n"), environ={})


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"not valid YAML"):
        load_settings(_write(tmp_path, "partitions: [1\n"), environ={})


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().partitions = 3  # type: ignore[misc]


def test_portal_tokens_is_an_optional_path(tmp_path: Path) -> None:
    assert load_settings(_write(tmp_path, "log_level: info\n"), environ={}).portal_tokens is None
    environ = {"SLAMON_PORTAL_TOKENS": "/run/secrets/portal.yaml"}
    assert load_settings(_write(tmp_path, ""), environ=environ).portal_tokens == Path(
        "/run/secrets/portal.yaml")


# --- derived defaults and group liveness (issue 9: defects 2 and 11) ---


@pytest.mark.parametrize(
    ("prefix", "app_id"),
    [("sla.", "slamon"), ("eu.", "slamon-eu"), ("test.ab12.", "slamon-test.ab12"),
     ("", "slamon-unprefixed"), ("blue-", "slamon-blue-")],
)
def test_the_default_app_id_follows_the_topic_prefix(prefix: str, app_id: str) -> None:
    settings = load_settings(Path("/dev/null"), environ={"SLAMON_TOPIC_PREFIX": prefix})
    assert settings.app_id == app_id


def test_two_prefixes_never_share_a_default_group() -> None:
    ids = {load_settings(Path("/dev/null"), environ={"SLAMON_TOPIC_PREFIX": p}).app_id
           for p in ("sla.", "sla.eu.", "eu.", "")}
    assert len(ids) == 4


def test_an_explicit_app_id_wins_over_the_derived_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "app_id: shared\n")
    settings = load_settings(path, environ={"SLAMON_TOPIC_PREFIX": "eu."})
    assert settings.app_id == "shared"
    assert load_settings(Path("/dev/null"), environ={"SLAMON_APP_ID": "x",
                                                     "SLAMON_TOPIC_PREFIX": "eu."}).app_id == "x"


def test_the_shipped_config_leaves_app_id_to_the_prefix() -> None:
    settings = load_settings(REPO_ROOT / "config" / "slamon.yaml",
                             environ={"SLAMON_TOPIC_PREFIX": "eu."})
    assert settings.app_id == "slamon-eu"


def test_the_worker_id_is_stable_and_distinct_per_web_port(monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "node 7")
    first = load_settings(Path("/dev/null"), environ={"SLAMON_WEB_PORT": "6066"})
    again = load_settings(Path("/dev/null"), environ={"SLAMON_WEB_PORT": "6066"})
    other = load_settings(Path("/dev/null"), environ={"SLAMON_WEB_PORT": "6067"})
    assert first.worker_id == again.worker_id == "node-7-6066"
    assert other.worker_id == "node-7-6067"
    named = load_settings(Path("/dev/null"), environ={"SLAMON_WORKER_ID": "monitor-0"})
    assert named.worker_id == "monitor-0"


def test_group_liveness_defaults_resume_within_ten_seconds() -> None:
    settings = Settings()
    assert settings.session_timeout <= 10.0
    assert settings.heartbeat_interval * 3 <= settings.session_timeout


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"SLAMON_HEARTBEAT_INTERVAL": "10"},
         "SLAMON_HEARTBEAT_INTERVAL: heartbeat_interval (10 s) must be below session_timeout "
         "(10 s); a third of it or less is usual"),
        ({"SLAMON_SESSION_TIMEOUT": "2"},
         "SLAMON_SESSION_TIMEOUT: heartbeat_interval (3 s) must be below session_timeout (2 s)"
         "; a third of it or less is usual"),
        ({"SLAMON_SESSION_TIMEOUT": "0"}, "SLAMON_SESSION_TIMEOUT: 0 must be > 0"),
        ({"SLAMON_MAX_FUTURE": "-1"}, "SLAMON_MAX_FUTURE: -1 must be >= 0"),
        ({"SLAMON_BROKER_UNREACHABLE_AFTER": "0"},
         "SLAMON_BROKER_UNREACHABLE_AFTER: 0 must be > 0"),
        ({"SLAMON_WORKER_ID": "a b"}, "SLAMON_WORKER_ID: 'a b' may contain only letters"),
    ],
)
def test_bad_group_settings_are_named(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Path("/dev/null"), environ=environ)
    assert [p[:len(problem)] for p in caught.value.problems] == [problem]
