"""Options: one table, strict parsing, precedence flag > setting > environment > default."""

import base64
import importlib.util
from types import SimpleNamespace

import pytest

from hurricane_runtime.config import SERVE_OPTIONS, ConfigError, ServeConfig


def load(flags=None, settings=None, env=None):
    return ServeConfig.load(flags or {}, settings, env or {})


def test_defaults_follow_django_hurricane():
    config = load()
    assert (config.port, config.probe_port) == (8000, 8001)
    assert (config.startup_probe, config.readiness_probe, config.liveness_probe) == (
        "/startup",
        "/ready",
        "/alive",
    )
    assert config.metrics_path == "/metrics"
    assert config.log_format == "text"
    assert config.access_log_probes is False
    assert config.webhook_url is None


def test_every_option_has_a_flag_a_setting_and_help():
    for option in SERVE_OPTIONS:
        assert option.flag == "--" + option.name.replace("_", "-")
        assert option.setting == "HURRICANE_" + option.name.upper()
        assert option.help


def test_flag_beats_setting_beats_environment_beats_default():
    settings = SimpleNamespace(HURRICANE_PORT=7000)
    env = {"HURRICANE_PORT": "6000", "HURRICANE_WORKERS": "3"}
    assert load({"port": "9000"}, settings, env).port == 9000
    config = load({}, settings, env)
    assert config.port == 7000 and config.sources["port"] == "setting"
    assert config.workers == 3 and config.sources["workers"] == "env"
    assert load({}, None, {}).sources["port"] == "default"


@pytest.mark.parametrize("word", ["true", "1", "yes", "on", "TRUE", " On "])
def test_true_words(word):
    assert load(env={"HURRICANE_STATIC": word}).static is True


@pytest.mark.parametrize("word", ["false", "0", "no", "off", "False"])
def test_false_is_false(word):
    assert load(env={"HURRICANE_STATIC": word}).static is False


def test_native_booleans_in_settings():
    assert load(settings=SimpleNamespace(HURRICANE_MEDIA=True)).media is True


@pytest.mark.parametrize("word", ["flase", "", "2", "enabled"])
def test_other_booleans_are_errors_naming_option_and_source(word):
    with pytest.raises(ConfigError) as error:
        load(env={"HURRICANE_AUTORELOAD": word})
    message = str(error.value)
    assert "'autoreload'" in message
    assert "environment variable HURRICANE_AUTORELOAD" in message
    assert "true/false" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("port", "0"),
        ("port", "65536"),
        ("port", "80OO"),
        ("probe_port", "-1"),
        ("workers", "0"),
        ("backlog", "0"),
        ("drain_timeout", "-1"),
        ("check_timeout", "nan"),
        ("max_body_size", "10X"),
        ("log_format", "xml"),
        ("readiness_probe", "ready"),
        ("webhook_url", "ftp://example.com"),
    ],
)
def test_bad_values_are_rejected(name, value):
    with pytest.raises(ConfigError, match=repr(name)):
        load(env={"HURRICANE_" + name.upper(): value})


def test_bad_setting_names_the_setting():
    with pytest.raises(ConfigError, match="setting HURRICANE_WORKERS"):
        load(settings=SimpleNamespace(HURRICANE_WORKERS="many"))


def test_bad_flag_names_the_flag():
    with pytest.raises(ConfigError, match="flag --port"):
        load({"port": "http"})


def test_sizes_accept_suffixes():
    assert load(env={"HURRICANE_MAX_BODY_SIZE": "2M"}).max_body_size == 2 * 1024 * 1024
    assert load(env={"HURRICANE_MAX_HEADER_SIZE": "16k"}).max_header_size == 16 * 1024


def test_commands_are_shell_split():
    config = load(env={"HURRICANE_COMMAND": "'migrate --noinput' 'collectstatic --noinput'"})
    assert config.commands == [["migrate", "--noinput"], ["collectstatic", "--noinput"]]
    config = load({"command": ["record 'two words'", "check"]})
    assert config.commands == [["record", "two words"], ["check"]]
    settings = SimpleNamespace(HURRICANE_COMMAND=["migrate --noinput"])
    assert load(settings=settings).commands == [["migrate", "--noinput"]]


def test_unbalanced_quotes_are_an_error():
    with pytest.raises(ConfigError, match="'command'"):
        load(env={"HURRICANE_COMMAND": "'migrate"})


def test_probe_port_follows_port_unless_set():
    assert load({"port": "9000"}).probe_port == 9001
    assert load({"port": "9000", "probe_port": "9100"}).probe_port == 9100


def test_port_and_probe_port_must_differ():
    with pytest.raises(ConfigError, match="must differ"):
        load({"port": "9000", "probe_port": "9000"})


def test_probe_paths_must_differ():
    with pytest.raises(ConfigError, match="different paths"):
        load({"readiness_probe": "/alive"})


WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()
NEXT_WHSEC = "whsec_" + base64.b64encode(b"n" * 32).decode()


def test_secret_is_hidden_in_the_summary():
    summary = load(env={"HURRICANE_WEBHOOK_SECRET": WHSEC}).summary()
    assert summary["webhook_secret"] == "***"


def test_several_webhook_secrets_for_rotation():
    config = load(env={"HURRICANE_WEBHOOK_SECRET": f"{WHSEC} {NEXT_WHSEC}"})
    assert config.webhook_secret == (WHSEC, NEXT_WHSEC)
    settings = SimpleNamespace(HURRICANE_WEBHOOK_SECRET=[WHSEC])
    assert load(settings=settings).webhook_secret == (WHSEC,)
    assert load().webhook_secret == ()


@pytest.mark.parametrize(
    "secret",
    ["s3cret", "whsec_", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_a_secret_not_in_whsec_base64_form_stops_the_start(secret):
    with pytest.raises(ConfigError, match="webhook_secret' from env") as error:
        load(env={"HURRICANE_WEBHOOK_SECRET": f"{WHSEC} {secret}"})
    assert "whsec_ and the base64 of 24 to 64 random bytes" in str(error.value)
    assert secret not in str(error.value).replace("whsec_ and", "")  # never echoed


def test_serve_reports_a_bad_value_without_traceback(start_serve):
    served = start_serve(env={"HURRICANE_WORKERS": "lots"}, wait=False)
    assert served.wait_exit(60) != 0
    output = served.output()
    assert "'workers'" in output and "HURRICANE_WORKERS" in output
    assert "Traceback" not in output


def test_serve_flag_beats_setting_beats_env(start_serve):
    from conftest import free_port

    flag_port, setting_port, env_port = free_port(), free_port(), free_port()
    served = start_serve(
        "--port",
        str(flag_port),
        env={"TESTPROJECT_SETTING_PORT": str(setting_port), "HURRICANE_PORT": str(env_port)},
        port=flag_port,
    )
    assert served.get("/json/")[0] == 200
    served.stop()
    served = start_serve(
        env={"TESTPROJECT_SETTING_PORT": str(setting_port), "HURRICANE_PORT": str(env_port)},
        port=setting_port,
    )
    assert served.get("/json/")[0] == 200


def test_loop_choice_and_uvloop_must_be_installed_to_insist_on_it(monkeypatch):
    assert load().loop == "auto"
    assert load({"loop": "asyncio"}).loop == "asyncio"
    with pytest.raises(ConfigError, match="option 'loop'"):
        load({"loop": "trio"})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "uvloop" else real_find_spec(name)
    )
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        load(env={"HURRICANE_LOOP": "uvloop"})
    assert load().loop == "auto"  # auto falls back to asyncio without complaint
