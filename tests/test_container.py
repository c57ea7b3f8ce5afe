"""The container as documented: a config directory mounted read-only, a data volume where the
state database and reports go by default, a health check that reads the port from config.yaml.
Docker does not run in the test environment: the pieces are tested, and the Dockerfile and the
README are checked to agree."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from checks.errors import ConfigError
from monitor.cli.health import healthz_url
from monitor.cli.main import main
from monitor.loader import load
from tests.sidecar import serve
from tests.test_daemon import MERCHANTS

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
README = (REPO / "README.md").read_text(encoding="utf-8")


def config_dir(root: Path, listen: str) -> Path:
    """The documented layout: config.yaml and checks/ in one directory; returns config.yaml."""
    (root / "checks").mkdir(parents=True)
    (root / "checks" / "merchants.yaml").write_text(
        "feature_views:\n" + MERCHANTS, encoding="utf-8"
    )
    config = root / "config.yaml"
    config.write_text(
        "stores:\n"
        "  online: {type: feast-sqlite, path: /nonexistent/online.db, project: demo}\n"
        "  lake: {type: parquet, root: /nonexistent/offline}\n"
        "checks: checks/*.yaml\n"
        f"http: {{listen: '{listen}'}}\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])  # noqa: S104 - the container's
def test_featmon_health_exits_0_when_the_configured_port_answers_and_1_when_not(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`featmon health` asks /healthz on the port of http.listen (on loopback when the sidecar
    listens on every interface): 0 while a real sidecar serves it, 1 once it stopped, one line
    each time."""
    with serve(None, listen=f"{host}:0") as url:
        port = int(url.rsplit(":", 1)[1])
        config = config_dir(tmp_path, f"{host}:{port}")
        assert main(["health", "--config", str(config)]) == 0
        answered = capsys.readouterr().out
    assert answered == f"featmon health: http://127.0.0.1:{port}/healthz: ok\n"
    assert main(["health", "--config", str(config)]) == 1
    refused = capsys.readouterr().out
    assert refused.startswith(f"featmon health: http://127.0.0.1:{port}/healthz: not answering")
    assert refused.count("\n") == 1


def test_featmon_health_is_1_with_one_line_when_the_config_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing config.yaml is unhealthy (1), said in one line, not a traceback."""
    assert main(["health", "--config", str(tmp_path / "config.yaml")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("featmon health: cannot read http.listen: ")
    assert out.count("\n") == 1


def test_the_health_url_of_each_listen_form() -> None:
    """Every interface is asked on loopback; a named host and IPv6 as written."""
    assert healthz_url("0.0.0.0:9108") == "http://127.0.0.1:9108/healthz"
    assert healthz_url(":9108") == "http://127.0.0.1:9108/healthz"
    assert healthz_url("[::]:9108") == "http://[::1]:9108/healthz"
    assert healthz_url("localhost:80") == "http://localhost:80/healthz"


def test_the_state_database_and_reports_default_to_the_data_dir(tmp_path: Path) -> None:
    """With FEATMON_DATA_DIR set, the defaults go there (the config directory is read-only in
    the container); without it, next to config.yaml; a path config.yaml names stays its own."""
    config = config_dir(tmp_path / "etc", "0.0.0.0:9108")
    data = tmp_path / "data"
    loaded = load(config, {"FEATMON_DATA_DIR": str(data)})
    assert [v.view.name for v in loaded.views] == ["merchant_stats"]
    assert loaded.config.state.url.get_secret_value() == f"sqlite:///{data}/featmon-state.db"
    assert loaded.config.reports.dir == str(data / "featmon-reports")
    beside = load(config, {})
    assert beside.config.state.url.get_secret_value() == (
        f"sqlite:///{config.parent}/featmon-state.db"
    )
    assert beside.config.reports.dir == str(config.parent / "featmon-reports")
    with config.open("a", encoding="utf-8") as file:
        file.write("state: {url: 'sqlite:///own.db'}\nreports: {dir: own-reports}\n")
    named = load(config, {"FEATMON_DATA_DIR": str(data)})
    assert named.config.state.url.get_secret_value() == f"sqlite:///{config.parent}/own.db"
    assert named.config.reports.dir == str(config.parent / "own-reports")


def instruction(name: str) -> list[str]:
    """The arguments of each Dockerfile instruction `name` (continuation lines joined)."""
    joined = DOCKERFILE.replace("\\\n", " ")
    return [m.strip() for m in re.findall(rf"^{name}\s+(.*)$", joined, re.MULTILINE)]


def docker_run_lines(text: str) -> list[list[str]]:
    return [shlex.split(m) for m in re.findall(r"^[#\s]*(docker run .*)$", text, re.MULTILINE)]


def test_the_dockerfile_and_the_readme_agree_on_how_the_container_runs() -> None:
    """One docker run line in both: the config directory mounted read-only where the command
    and the health check read config.yaml, a volume on the image's VOLUME, which is the data
    dir; the health check is `featmon health` on that config; the dependencies come from the
    lock with their hashes."""
    (readme_run,) = docker_run_lines(README)
    (dockerfile_run,) = docker_run_lines(DOCKERFILE)
    assert readme_run == dockerfile_run
    mounts = [readme_run[i + 1] for i, arg in enumerate(readme_run) if arg == "-v"]
    config_mount = next(m for m in mounts if m.endswith(":ro"))
    source, target, _ = config_mount.split(":")
    assert source == "$PWD/featmon"
    (data_mount,) = [m for m in mounts if m != config_mount]
    (volume,) = instruction("VOLUME")
    assert data_mount.split(":")[1] == volume == "/var/lib/featmon"
    assert f"ENV FEATMON_DATA_DIR={volume}" in DOCKERFILE
    (cmd,) = instruction("CMD")
    config_path = json.loads(cmd)[json.loads(cmd).index("--config") + 1]
    assert Path(config_path).parent == Path(target)
    (health,) = instruction("HEALTHCHECK")
    assert health.split(" CMD ", 1)[1] == json.dumps(["featmon", "health", "--config", config_path])
    assert "9108" not in health
    assert f"featmon health --config {config_path}" in " ".join(README.split())
    assert "COPY requirements/featmon.txt /tmp/featmon.txt" in DOCKERFILE
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/featmon.txt" in (
        DOCKERFILE
    )
    assert "requirements/featmon.txt" in README


def test_the_documented_config_directory_finds_its_check_files(tmp_path: Path) -> None:
    """Mounting the directory (config.yaml and checks/), not config.yaml alone, is what makes
    `checks: checks/*.yaml` find the check files."""
    config = config_dir(tmp_path / "featmon", "0.0.0.0:9108")
    alone = tmp_path / "alone" / "config.yaml"
    alone.parent.mkdir()
    alone.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    assert len(load(config, {}).views) == 1
    with pytest.raises(ConfigError, match="checks"):
        load(alone, {})
