"""Config file: init writes a private file with a fresh token; bad files give clear errors."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plex_security_helper.cli import main
from plex_security_helper.config import ConfigError, load_config, parse_config


def test_init_writes_private_config_and_prints_token_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "etc" / "helper.toml"
    assert main(["init", "--config", str(path), "--log-path", "/plex/Logs/Plex Media Server.log"]) == 0
    out = capsys.readouterr().out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_config(path)
    assert out.count(config.api.token) == 1
    assert len(config.api.token) >= 40
    assert config.monitor.log_path == Path("/plex/Logs/Plex Media Server.log")
    assert config.database == path.parent / "plex-security.db"
    assert config.detect.failed_auth_threshold == 5
    assert config.detect.failed_auth_window == 600

    # A second init never overwrites the token.
    assert main(["init", "--config", str(path)]) == 1
    assert load_config(path).api.token == config.api.token


def test_two_inits_give_different_tokens_and_ids(tmp_path: Path) -> None:
    main(["init", "--config", str(tmp_path / "a.toml")])
    main(["init", "--config", str(tmp_path / "b.toml")])
    a, b = load_config(tmp_path / "a.toml"), load_config(tmp_path / "b.toml")
    assert a.api.token != b.api.token
    assert a.helper_id != b.helper_id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not valid TOML"),
        ('[helper]\nid = "x"\n', "invalid configuration at (api|monitor|storage): required key not provided"),
        (
            '[helper]\nid="x"\n[api]\ntoken="short"\n[monitor]\nlog_path="l"\n[storage]\ndatabase="d"\n',
            "token must be at least 16 characters",
        ),
        (
            '[helper]\nid="x"\n[api]\nport=70000\ntoken="0123456789abcdefg"\n'
            '[monitor]\nlog_path="l"\n[storage]\ndatabase="d"\n',
            "invalid configuration at api.port",
        ),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")


def test_serve_with_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "none.toml")]) == 2
    assert "configuration file not found" in capsys.readouterr().err


toml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(["helper", "api", "monitor", "storage", "detect", "x"]), toml_values))
def test_any_document_is_accepted_or_refused_cleanly(raw: dict[str, Any]) -> None:
    try:
        parse_config(raw, Path("/base"))
    except ConfigError as err:
        assert str(err).startswith("invalid configuration at ")


def test_default_document_round_trips() -> None:
    from plex_security_helper.config import default_config_text

    raw = tomllib.loads(default_config_text(token="t" * 20, log_path="/l", database="d.db"))
    config = parse_config(raw, Path("/etc/ps"))
    assert config.database == Path("/etc/ps/d.db")


def test_init_tls_makes_a_certificate_and_prints_its_fingerprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from plex_security_helper.cli import main
    from plex_security_helper.tlscert import fingerprint

    config = tmp_path / "helper.toml"
    assert main(["init", "--config", str(config), "--log-path", "/x/p.log", "--tls", "--docker-socket", "/none"]) == 0
    out = capsys.readouterr().out
    loaded = load_config(config)
    assert loaded.api.tls_cert == tmp_path / "helper-cert.pem"
    assert loaded.api.tls_key == tmp_path / "helper-key.pem"
    assert (tmp_path / "helper-key.pem").stat().st_mode & 0o777 == 0o600
    assert fingerprint(tmp_path / "helper-cert.pem") in out
    assert len(fingerprint(tmp_path / "helper-cert.pem").split(":")) == 32
    text = config.read_text().replace('tls_key = "helper-key.pem"\n', "")
    config.write_text(text)
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        load_config(config)
