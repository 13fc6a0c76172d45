"""The deployment files say what the README says: web, worker and release, in both shapes."""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_procfile_runs_web_worker_and_migrations():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines()
                 if line.strip())
    assert lines["web"].split()[:2] == ["payhook", "serve"] and "$PORT" in lines["web"]
    assert "0.0.0.0" in lines["web"]
    assert lines["worker"].strip() == "payhook worker"  # a wheel has no top-level `worker`
    assert lines["release"].strip() == "payhook migrate"


def test_compose_has_the_production_shape():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker"}
    assert services["migrate"]["command"] == ["payhook", "migrate"]
    assert services["worker"]["command"] == ["payhook", "worker"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql://")
        assert environment["REDIS_URL"].startswith("redis://")
    # And whichever compose CLI this machine has accepts it (`docker compose` needs the
    # plugin; Debian's `docker-compose` package works without an engine).
    commands = []
    if shutil.which("docker-compose"):
        commands.append(["docker-compose"])
    if shutil.which("docker") and subprocess.run(
            ["docker", "compose", "version"], capture_output=True).returncode == 0:
        commands.append(["docker", "compose"])
    for command in commands:
        result = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "config"],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr



def test_every_package_is_in_the_wheel_list():
    """pyproject.toml names the packages (setuptools cannot find a mapped one): a new one must
    be added there, or the wheel goes without it."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(("payhook", *path.parent.relative_to(ROOT / "src" / "payhook").parts))
             for path in (ROOT / "src" / "payhook").rglob("__init__.py")}
    assert found - set(setuptools["packages"]) == set()
    assert setuptools["package-dir"]["payhook.migrations"] == "migrations"
    assert "worker" not in setuptools["packages"]


def test_the_image_installs_the_wheel_not_the_checkout():
    """What tests/e2e/test_wheel.py proves works: a wheel built from these inputs, installed."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copied = {word for line in lines if line.startswith("COPY ") and "--from" not in line
              for word in line.split()[1:-1]}
    assert {"pyproject.toml", "README.md", "src", "migrations"} <= copied
    runs = [line for line in lines if line.startswith("RUN ")]
    assert any("pip wheel" in line and "--no-deps" in line for line in runs)
    installs = [line for line in runs if "pip install" in line]
    assert len(installs) == 1 and ".whl" in installs[0]
    assert " -e " not in installs[0] and "--editable" not in installs[0]
