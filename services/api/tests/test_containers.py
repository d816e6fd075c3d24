"""The containers (infra/docker) as far as they can be proven without a Docker engine.

The Dockerfile's instructions are carried out here into a folder that stands for the image: COPY from the build
context (through .dockerignore), the `uv` RUN steps with the local uv, ENV, WORKDIR, USER, ENTRYPOINT, CMD,
HEALTHCHECK and STOPSIGNAL as written. The compose file is read and interpolated as compose does. Each service's
start command then runs exactly as its container would run it, on this machine, against a real Postgres, and the
HEALTHCHECK runs exactly as written. What needs an engine is not proven here: the base images themselves, the
switch to the non-root user, PID 1, and the network between the services (the API reaches a test database instead
of the host `postgres`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import yaml

from .conftest import SHIPPED, TOKEN, free_port

if TYPE_CHECKING:
    from conftest import PostgresOutage  # the root conftest's fixture type

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "infra" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
SECRETS = {"POSTGRES_PASSWORD": "compose-test-password", "JOURNAL_TOKENS": TOKEN}
DOCKER_STOP_GRACE = "10s"  # what `docker stop` waits before SIGKILL unless told otherwise
START_TIMEOUT_S = 120.0


# --- The Dockerfile, parsed ---------------------------------------------------------------------------------------

_DOCKER_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _expand(text: str, variables: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` as Docker expands them in FROM and ENV (unset: empty)."""
    return _DOCKER_VARIABLE.sub(lambda match: variables.get(match[1] or match[2], ""), text)


@dataclass
class Stage:
    name: str
    base: str  # an image, or the name of an earlier stage
    instructions: list[tuple[str, str]]  # (KEYWORD, arguments)

    def arguments(self, keyword: str) -> list[str]:
        return [arguments for name, arguments in self.instructions if name == keyword]


@dataclass
class Dockerfile:
    args: dict[str, str]  # the global ARGs' defaults
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def is_stage(self, name: str) -> bool:
        return any(stage.name == name for stage in self.stages)

    def chain(self, name: str) -> list[Stage]:
        """The stage and those it is built FROM, first to last."""
        stages = [self.stage(name)]
        while self.is_stage(stages[0].base):
            stages.insert(0, self.stage(stages[0].base))
        return stages

    def needed(self, target: str) -> list[Stage]:
        """Every stage a build of ``target`` runs (its chain and what it copies from), in file order."""
        names: set[str] = set()
        pending = [target]
        while pending:
            name = pending.pop()
            if name in names:
                continue
            names.add(name)
            stage = self.stage(name)
            pending += [stage.base] if self.is_stage(stage.base) else []
            pending += [_flags(arguments).get("from", "") for arguments in stage.arguments("COPY")]
            pending = [name for name in pending if self.is_stage(name)]
        return [stage for stage in self.stages if stage.name in names]


def parse_dockerfile(text: str) -> Dockerfile:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # comments (and the syntax directive); also inside continuations
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = arguments.split()
            assert len(words) == 3, f"name every stage (FROM image AS name): {line}"
            assert words[1].upper() == "AS"
            stages.append(Stage(name=words[2], base=_expand(words[0], args), instructions=[]))
        elif not stages:
            assert keyword == "ARG", f"only ARG comes before the first FROM: {line}"
            name, _, default = arguments.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((keyword, arguments))
    return Dockerfile(args, stages)


def _flags(arguments: str) -> dict[str, str]:
    """The ``--name=value`` options of a COPY or RUN."""
    return dict(word[2:].split("=", 1) for word in shlex.split(arguments) if word.startswith("--"))


def _duration_s(text: str) -> float:
    """A Docker or compose duration (``30s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    assert parts, f"not a duration: {text!r}"
    assert "".join(number + unit for number, unit in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


# --- .dockerignore ------------------------------------------------------------------------------------------------


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """The rules of .dockerignore as (exception, pattern), in order; the last rule that matches decides."""
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = ""
        for token in re.findall(r"\*\*/|/\*\*|\*\*|\*|\?|\[[^]]*\]|[^*?[]+", pattern):
            if token == "**/":
                regex += "(?:.*/)?"
            elif token == "/**":
                regex += "(?:/.*)?"
            elif token == "**":
                regex += ".*"
            elif token == "*":
                regex += "[^/]*"
            elif token == "?":
                regex += "[^/]"
            elif token.startswith("["):
                regex += token.replace("[!", "[^")
            else:
                regex += re.escape(token)
        rules.append((exception, re.compile(regex)))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``relative`` (a path in the build context) out: a rule matches it or a folder above."""
    parts = relative.split("/")
    ignored = False
    for exception, pattern in rules:
        if any(pattern.fullmatch("/".join(parts[:end])) for end in range(1, len(parts) + 1)):
            ignored = not exception
    return ignored


# --- The image, carried out into a folder -------------------------------------------------------------------------


@dataclass
class Image:
    """A build target's file system (under ``root``) and configuration, as the Dockerfile leaves them."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: tuple[dict[str, str], list[str]] | None = None
    stopsignal: str = "SIGTERM"
    exposed: list[str] = field(default_factory=list)
    users_made: dict[str, str] = field(default_factory=dict)  # uid -> home folder, of the users a RUN useradd made

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def local(self, value: str) -> str:
        """A container path, or a PATH-like list of them, as paths on this machine for those the build made."""
        return os.pathsep.join(
            str(self.path(part)) if part.startswith("/") and self.path(part).exists() else part
            for part in value.split(":")
        )

    def environ(self, environment: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a process in the container gets: the image's ENV, then the service's ``environment``.

        This machine's variables stand in for what the base image sets, without any of the journal's settings and
        without the test environment's own Python on PATH (the image has only its own)."""
        outside = {
            name: value
            for name, value in os.environ.items()
            if name != "DATABASE_URL" and not name.startswith(("JOURNAL_", "VIRTUAL_ENV", "PYTHON"))
        }
        # Docker sets HOME from the USER's /etc/passwd entry; root's stays this machine's (uv's cache is under it).
        home = self.users_made.get(self.user.partition(":")[0])
        return (
            outside
            | {"PATH": _base_image_path()}
            | ({"HOME": home} if home else {})
            | {name: self.local(value) for name, value in self.env.items()}
            | (environment or {})
        )

    def cwd(self) -> Path:
        return self.path(self.workdir)


def _base_image_path() -> str:
    """This machine's PATH, standing in for the base image's: without the test environment's own Python."""
    ours = {Path(sys.prefix) / "bin", Path(sys.executable).parent}
    parts = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(part for part in parts if part and Path(part) not in ours)


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to carry out the Dockerfile's RUN uv steps (it is what `make` installs with)"
    return uv


_UV_SETTINGS_KEPT = ("UV_CACHE", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX", "UV_NATIVE_TLS", "UV_HTTP")


def _run_step(image: Image, arguments: str) -> None:
    """A RUN: the user's creation (which needs root: its uid is noted and checked) or a `uv` command, run here."""
    command = arguments
    while command.startswith("--"):  # --mount=type=cache,...: the local uv cache stands in for it
        command = command.split(None, 1)[1]
    if command.startswith(("groupadd ", "useradd ")):
        assert re.fullmatch(r"groupadd [^&;|]+ && useradd [^&;|]+", command), command
        uid, home = re.findall(r"useradd .*--uid (\d+) .*--home-dir (\S+)", command)[0]
        image.users_made[uid] = home
        return
    argv = shlex.split(command)
    assert argv[0] == "uv", f"the test knows RUN uv ... and the user's creation, not: RUN {arguments}"
    assert not {"&&", "||", ";", "|"} & set(argv), f"one uv command per RUN: {arguments}"
    environ = {
        name: value
        for name, value in image.environ().items()
        if not name.startswith("UV_") or name.startswith(_UV_SETTINGS_KEPT)
    }
    environ["UV_PYTHON"] = sys.executable  # stands in for the base image's Python
    image.cwd().mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [_uv(), *argv[1:]], cwd=image.cwd(), env=environ, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"RUN {command} failed:\n{result.stdout}{result.stderr}"


def _copy_step(image: Image, arguments: str, dockerfile: Dockerfile, rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    flags = _flags(arguments)
    assert set(flags) <= {"from", "chmod"}, arguments
    *sources, destination = [word for word in shlex.split(arguments) if not word.startswith("--")]
    target = destination if destination.startswith("/") else f"{image.workdir.rstrip('/')}/{destination}"
    into_folder = destination.endswith("/") or len(sources) > 1
    origin_stage = flags.get("from")
    if origin_stage is not None and not dockerfile.stage(origin_stage).instructions:
        return  # files of another image (uv's binaries): the local uv stands in for them
    for source in sources:
        if origin_stage is not None:
            # Stages share this one folder: what an earlier stage made is already at its path.
            origin = image.path(source)
            assert origin.exists(), f"COPY --from={origin_stage} {source}: the stage made no such path"
            assert origin == image.path(target), "copy between stages only to the same path (venv scripts name it)"
            continue
        origin = REPO / source
        assert origin.exists(), f"COPY {source}: no such path in the build context"
        assert not _ignored(source.strip("/"), rules), f"COPY {source}: .dockerignore leaves it out of the context"
        made = image.path(target)
        if origin.is_dir():

            def ignore(folder: str, names: list[str]) -> set[str]:
                relative = Path(folder).relative_to(REPO).as_posix()
                return {name for name in names if _ignored(f"{relative}/{name}", rules)}

            shutil.copytree(origin, made, ignore=ignore, dirs_exist_ok=True)
        else:
            made = made / origin.name if into_folder else made
            made.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, made)
        if "chmod" in flags:
            made.chmod(int(flags["chmod"], 8))


def build(dockerfile: Dockerfile, target: str, root: Path) -> Image:
    """Carry out the stages a build of ``target`` runs, into ``root``; the target's image."""
    rules = _dockerignore()
    images: dict[str, Image] = {}
    for stage in dockerfile.needed(target):
        base = images.get(stage.base)
        image = (
            dataclasses.replace(base, env=dict(base.env), exposed=list(base.exposed), users_made=dict(base.users_made))
            if base is not None
            else Image(root=root, env={"PATH": _base_image_path()})
        )
        for keyword, arguments in stage.instructions:
            if keyword == "ENV":
                before = dict(image.env)
                for word in shlex.split(arguments):
                    name, equals, value = word.partition("=")
                    assert equals, f"ENV name=value, not the legacy form: {arguments}"
                    image.env[name] = _expand(value, before)
            elif keyword == "WORKDIR":
                image.workdir = _expand(arguments, image.env)
                image.cwd().mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                _copy_step(image, arguments, dockerfile, rules)
            elif keyword == "RUN":
                _run_step(image, arguments)
            elif keyword == "USER":
                image.user = arguments
            elif keyword == "EXPOSE":
                image.exposed += arguments.split()
            elif keyword == "STOPSIGNAL":
                image.stopsignal = arguments
            elif keyword == "ENTRYPOINT":
                image.entrypoint, image.cmd = json.loads(arguments), []  # a new ENTRYPOINT resets an inherited CMD
            elif keyword == "CMD":
                image.cmd = json.loads(arguments)
            elif keyword == "HEALTHCHECK":
                options, _, command = arguments.partition(" CMD ")
                image.healthcheck = (_flags(options), json.loads(command))  # exec form: JSON, or Docker uses a shell
            else:
                raise AssertionError(f"the test does not know {keyword}: carry it out here, or leave it out")
        images[stage.name] = image
    return images[target]


# --- The compose file, interpolated -------------------------------------------------------------------------------


class ComposeError(Exception):
    """What compose says when a required variable is missing."""


_COMPOSE_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}$]*))?\}|(\w+))")


def _interpolate(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match[1]:
            return "$"
        name, operator, argument = match[2] or match[5], match[3], match[4]
        given = variables.get(name)
        missing = given is None or (given == "" and operator in (":-", ":?"))
        if operator in (":?", "?") and missing:
            raise ComposeError(f"required variable {name} is missing a value: {argument}")
        if operator in (":-", "-") and missing:
            return str(argument)
        return given or ""

    assert "${" not in _COMPOSE_VARIABLE.sub("", value), f"an interpolation the test does not know: {value}"
    return _COMPOSE_VARIABLE.sub(substitute, value)


def load_compose(variables: dict[str, str]) -> dict[str, Any]:
    compose: dict[str, Any] = _interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), variables)
    return compose


def start_command(image: Image, service: dict[str, Any]) -> list[str]:
    """What the service's container runs: compose's entrypoint and command, else the image's."""
    entrypoint: list[str] = service.get("entrypoint", image.entrypoint)
    command: list[str] = service.get("command", [] if "entrypoint" in service else image.cmd)
    assert isinstance(entrypoint, list), "exec form, so that signals reach the process"
    assert isinstance(command, list)
    return [*entrypoint, *command]


def service_environment(service: dict[str, Any], db_url: str) -> dict[str, str]:
    """The service's environment, its DATABASE_URL (host `postgres`, on compose's network) swapped for ``db_url``."""
    environment: dict[str, str] = dict(service["environment"])
    assert urlsplit(environment["DATABASE_URL"]).hostname == "postgres"
    return environment | {"DATABASE_URL": db_url}


# --- Containers, as processes on this machine ---------------------------------------------------------------------


@dataclass
class Container:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        """Wait until the output has a line matching ``pattern``; fail if the process ends or time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            ended = self.process.poll() is not None
            match = re.search(pattern, self.output(), re.MULTILINE)
            if match:
                return match
            if ended or time.monotonic() > deadline:
                state = f"ended with {self.process.returncode}" if ended else f"no match in {timeout_s} s"
                raise AssertionError(f"{pattern!r}: {state}; output:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, signal_name: str, grace: str) -> int:
        """What `docker stop` does: the stop signal, then the grace period (after which Docker would SIGKILL)."""
        self.process.send_signal(signal.Signals[signal_name])
        try:
            return self.process.wait(timeout=_duration_s(grace))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {grace} after {signal_name}:\n{self.output()}") from None


@contextmanager
def run_container(image: Image, argv: list[str], environment: dict[str, str], log: Path) -> Iterator[Container]:
    """Run ``argv`` as the container would (its ENV and the service's environment, in its WORKDIR)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [image.local(argv[0]), *argv[1:]],
            env=image.environ(environment),
            cwd=image.cwd(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a failed test kills whatever it started
        )
    try:
        yield Container(process, log)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def healthcheck(image: Image, environment: dict[str, str]) -> subprocess.CompletedProcess[str] | None:
    """The HEALTHCHECK command as Docker runs it: in the container's environment, killed after its --timeout
    (None: timed out, which Docker counts as a failure)."""
    assert image.healthcheck is not None
    options, argv = image.healthcheck
    try:
        return subprocess.run(
            argv,
            env=image.environ(environment),
            cwd=image.cwd(),
            capture_output=True,
            text=True,
            timeout=_duration_s(options.get("timeout", "30s")),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


def healthy(image: Image, environment: dict[str, str]) -> bool:
    result = healthcheck(image, environment)
    return result is not None and result.returncode == 0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout_s} s")
        time.sleep(0.1)


# --- Fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def api_image(dockerfile: Dockerfile, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The Dockerfile's default target, carried out."""
    return build(dockerfile, dockerfile.stages[-1].name, tmp_path_factory.mktemp("api-image"))


@pytest.fixture(scope="module")
def engine_image(dockerfile: Dockerfile, tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build(dockerfile, "engine", tmp_path_factory.mktemp("engine-image"))


@pytest.fixture
def compose() -> dict[str, Any]:
    """The compose file as compose reads it when the user has set the two secrets."""
    return load_compose(SECRETS)


def _site_packages(image: Image) -> Path:
    found = list(image.path("/app/.venv").glob("lib/python3.*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def _installed(image: Image) -> set[str]:
    """The distributions in the image's environment, by normalised name."""
    return {
        re.sub(r"[-_.]+", "-", path.name.split("-")[0]).lower()
        for path in _site_packages(image).glob("*.dist-info")
        if path.is_dir()
    }


def _locked_closure(package: str) -> set[str]:
    """``package`` and everything uv.lock says it needs, extras included, on any platform."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    entries = {entry["name"]: entry for entry in lock["package"]}
    closure: set[str] = set()
    pending: list[dict[str, Any]] = [{"name": package}]
    while pending:
        requirement = pending.pop()
        entry = entries[requirement["name"]]
        pending += [
            needed
            for extra in requirement.get("extra", [])
            for needed in entry.get("optional-dependencies", {}).get(extra, [])
        ]
        if requirement["name"] not in closure:
            closure.add(requirement["name"])
            pending += entry.get("dependencies", [])
    return closure


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


# --- The Dockerfile -----------------------------------------------------------------------------------------------


def test_the_dockerfile_builds_on_python_3_11_slim_with_a_pinned_uv(dockerfile: Dockerfile) -> None:
    """Every stage that builds or runs Python is on the same official python:3.11-slim image (the environment's
    scripts name its interpreter), and uv comes from its official image at a pinned version."""
    assert dockerfile.stages[-1].name == "api", "the API is the default target: the last stage"
    pythons = {stage.base for stage in dockerfile.stages if not dockerfile.is_stage(stage.base)} - {
        dockerfile.stage("uv").base
    }
    assert len(pythons) == 1, pythons
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-bookworm)?", pythons.pop())
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", dockerfile.stage("uv").base)
    for target in ("api", "engine"):
        copies = [arguments for stage in dockerfile.needed(target) for arguments in stage.arguments("COPY")]
        assert any(_flags(copy).get("from") == "uv" and "/uv" in copy.split() for copy in copies)


def test_the_dockerfile_installs_from_the_lock_without_dev_or_bench(dockerfile: Dockerfile) -> None:
    """Every `uv sync` is --locked (a stale lock fails the build) and --no-dev, names the one package it installs,
    installs it as a wheel at the end, and asks for no other group."""
    for target, package in (("api", "journal-api"), ("engine", "journal-engine")):
        syncs = [
            shlex.split(arguments.split(" uv ", 1)[1])
            for stage in dockerfile.needed(target)
            for arguments in stage.arguments("RUN")
            if " uv sync " in f" {arguments} "
        ]
        assert syncs, target
        for sync in syncs:
            assert sync[0] == "sync"
            assert {"--locked", "--no-dev"} <= set(sync)
            assert sync[sync.index("--package") + 1] == package
            assert not {"--group", "--all-groups", "--only-group", "--all-packages", "--dev", "--frozen"} & set(sync)
        assert "--no-editable" in syncs[-1]


def test_the_images_run_as_a_user_of_their_own(api_image: Image, engine_image: Image) -> None:
    """USER is a numeric uid that is not root (so `runAsNonRoot` can check it) and that the build created."""
    for image in (api_image, engine_image):
        uid, _, gid = image.user.partition(":")
        assert uid.isdigit(), image.user
        assert int(uid) != 0
        assert gid.isdigit()
        assert int(gid) != 0
        assert uid in image.users_made


def test_the_api_image_carries_its_migrations_entrypoint_and_healthcheck(api_image: Image) -> None:
    """The migrations are copied where JOURNAL_MIGRATIONS_DIR points, the entrypoint is infra/docker/entrypoint.sh
    (exec form), port 8000 is exposed and the HEALTHCHECK asks /readyz with Python's urllib (no curl in slim)."""
    migrations = api_image.path(api_image.env["JOURNAL_MIGRATIONS_DIR"])
    assert sorted(path.name for path in migrations.iterdir()) == sorted(
        path.name for path in (REPO / "migrations").iterdir()
    )
    for path in migrations.iterdir():
        assert path.read_bytes() == (REPO / "migrations" / path.name).read_bytes()
    assert api_image.entrypoint == ["/app/entrypoint.sh"]
    assert api_image.path("/app/entrypoint.sh").read_bytes() == (DOCKER / "entrypoint.sh").read_bytes()
    assert os.access(api_image.path("/app/entrypoint.sh"), os.X_OK)
    assert api_image.cmd == []
    assert api_image.exposed == ["8000"]
    assert api_image.env["JOURNAL_PORT"] == "8000"
    assert api_image.healthcheck is not None
    options, argv = api_image.healthcheck
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2]
    assert "/readyz" in argv[2]
    assert _duration_s(options["timeout"]) < _duration_s(options["interval"])


def test_the_api_image_holds_the_api_and_its_locked_dependencies_only(api_image: Image) -> None:
    """The environment the build made has journal-api (as a wheel, every file of the package included) and what
    uv.lock says it needs, nothing else: not the engine, nothing of the dev or bench groups."""
    site = _site_packages(api_image)
    installed = _installed(api_image)
    assert installed <= _locked_closure("journal-api")
    api = tomllib.loads((REPO / "services/api/pyproject.toml").read_text())["project"]
    assert {"journal-api"} | _names(api["dependencies"]) <= installed
    groups = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]
    assert {"pytest", "mypy", "pgserver"} <= _names([name for group in groups.values() for name in group])
    assert not {"journal-engine", "pytest", "mypy", "pgserver", "uv", "pip"} & installed
    assert not list(site.glob("*.pth")), "an editable install: the image would need the sources"
    package = REPO / "services/api/src/journal_api"
    expected = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    copied = {path.relative_to(site / "journal_api").as_posix() for path in (site / "journal_api").rglob("*")}
    assert expected <= copied  # the console's static files too
    assert api_image.path("/app/.venv/bin/journal").exists()
    assert not api_image.path("/app/.venv/bin/journal-engine").exists()


def test_the_engine_image_holds_the_engine_only(engine_image: Image) -> None:
    installed = _installed(engine_image)
    assert "journal-engine" in installed
    assert installed <= _locked_closure("journal-engine")
    assert engine_image.entrypoint == ["journal-engine"]
    assert engine_image.stopsignal == "SIGINT"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build() -> None:
    """The build context leaves out the environments, git, the embedded Postgres's data, caches and .env files."""
    rules = _dockerignore()
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "services/api/.venv/bin/python",
        ".tools/uv/bin/uv",
        ".data/postgres/PG_VERSION",
        ".env",
        "infra/docker/.env",
        "infra/docker/.env.local",
        "services/api/src/journal_api/__pycache__/app.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        ".pytest_cache/README.md",
        "services/api/.pytest_cache/README.md",
        ".coverage",
        ".coverage.host.1234.5678",
        "htmlcov/index.html",
        "docs/_build/index.html",
        "dist/journal_api-0.1.0.whl",
    ):
        assert _ignored(path, rules), path
    for path in (
        "uv.lock",
        "pyproject.toml",
        "services/api/src/journal_api/stream/app.py",
        "migrations/0001_journal.sql",
    ):
        assert not _ignored(path, rules), path


# --- The compose file ---------------------------------------------------------------------------------------------


def test_compose_runs_postgres_16_and_the_api_built_from_the_dockerfile(
    compose: dict[str, Any], dockerfile: Dockerfile
) -> None:
    services = compose["services"]
    postgres, api = services["postgres"], services["api"]
    assert re.fullmatch(r"postgres:16(\.\d+)?(-[a-z0-9]+)?", postgres["image"])
    probe = shlex.split(postgres["healthcheck"]["test"][-1])
    assert probe[0] == "pg_isready"
    assert probe[probe.index("-h") + 1] == "127.0.0.1", "over TCP: the set-up server answers on the socket only"
    volume, _, mounted = postgres["volumes"][0].partition(":")
    assert mounted == "/var/lib/postgresql/data"
    assert volume in compose["volumes"], "a named volume, kept across `docker compose down`"

    assert (COMPOSE_FILE.parent / api["build"]["context"]).resolve() == REPO
    assert (REPO / api["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert api["build"]["target"] == dockerfile.stages[-1].name == "api"
    assert api["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    assert "healthcheck" not in api, "the Dockerfile's HEALTHCHECK is the one"
    # The API's database is this Postgres, with the same user, password and database.
    url = urlsplit(api["environment"]["DATABASE_URL"])
    environment = postgres["environment"]
    assert (url.scheme, url.hostname, url.port or 5432) == ("postgresql", "postgres", 5432)
    assert (url.username, url.password) == (environment["POSTGRES_USER"], SECRETS["POSTGRES_PASSWORD"])
    assert environment["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert url.path == f"/{environment['POSTGRES_DB']}"
    assert api["environment"]["JOURNAL_TOKENS"] == SECRETS["JOURNAL_TOKENS"]

    demo = services["demo"]
    assert demo["profiles"] == ["demo"]
    assert demo["build"] == api["build"] | {"target": "engine"}
    assert demo["depends_on"] == {"api": {"condition": "service_healthy"}}  # the journal is migrated by then
    assert demo["environment"]["DATABASE_URL"] == api["environment"]["DATABASE_URL"]


@pytest.mark.parametrize("variable", sorted(SECRETS))
@pytest.mark.parametrize("value", [None, ""])
def test_compose_refuses_to_start_without_each_secret(variable: str, value: str | None) -> None:
    """No secret has a default in the file: unset or empty, compose stops with a message naming the variable."""
    variables = {name: given for name, given in SECRETS.items() if name != variable}
    if value is not None:
        variables[variable] = value
    with pytest.raises(ComposeError, match=rf"required variable {variable} is missing a value: set {variable} "):
        load_compose(variables)


# --- The containers, run --------------------------------------------------------------------------------------------


def test_the_api_container_migrates_serves_is_healthy_and_stops_on_docker_stop(
    api_image: Image, compose: dict[str, Any], empty_db_url: str, tmp_path: Path
) -> None:
    """On a new database the container applies the migrations, serves on 0.0.0.0:$JOURNAL_PORT and the HEALTHCHECK
    passes; `docker stop`'s SIGTERM reaches uvicorn (the script exec'd it), which exits 0 within the grace period,
    and the HEALTHCHECK fails once it is down. A restart finds the journal up to date."""
    service = compose["services"]["api"]
    port = free_port()  # for the image's JOURNAL_PORT=8000, which this machine may be using
    environment = service_environment(service, empty_db_url) | {"JOURNAL_PORT": str(port)}
    assert not healthy(api_image, environment)  # nothing listening yet
    for start, migrated in enumerate(
        [
            rf"^applied {len(SHIPPED)} migration\(s\): {re.escape(', '.join(SHIPPED))}$",
            rf"^journal is up to date \({len(SHIPPED)} migrations\)$",
        ]
    ):
        argv = start_command(api_image, service)
        with run_container(api_image, argv, environment, tmp_path / f"api-{start}.log") as container:
            container.wait_for(migrated)
            # The server is the process the container started: the script exec'd it, so it gets the signals.
            assert int(container.wait_for(r"Started server process \[(\d+)\]")[1]) == container.process.pid
            container.wait_for(rf"Uvicorn running on http://0\.0\.0\.0:{port} ")
            wait_until(lambda: healthy(api_image, environment), "healthy")
            stop = service.get("stop_signal", api_image.stopsignal)
            code = container.stop(stop, service.get("stop_grace_period", DOCKER_STOP_GRACE))
            # After its graceful shutdown uvicorn raises the signal again: here that ends the process (-15; Docker
            # shows 143); as PID 1 in the container the kernel ignores it and `journal serve` returns 0.
            assert code in (0, -signal.Signals[stop])
            assert f"Finished server process [{container.process.pid}]" in container.output()
        result = healthcheck(api_image, environment)
        assert result is None or result.returncode != 0  # down: unhealthy


async def test_the_healthcheck_fails_while_the_database_is_down(
    api_image: Image, compose: dict[str, Any], db_url: str, postgres_outage: PostgresOutage, tmp_path: Path
) -> None:
    """The HEALTHCHECK is readiness: it fails while Postgres is away (the server keeps running) and passes again
    once the server has its database back."""
    service = compose["services"]["api"]
    environment = service_environment(service, db_url) | {"JOURNAL_PORT": str(free_port())}
    with run_container(api_image, start_command(api_image, service), environment, tmp_path / "api.log") as container:
        await asyncio.to_thread(wait_until, lambda: healthy(api_image, environment), "healthy")
        await postgres_outage.begin()
        try:
            await asyncio.to_thread(wait_until, lambda: not healthy(api_image, environment), "unhealthy")
            result = healthcheck(api_image, environment)
            assert result is not None
            assert "HTTP Error 503" in result.stderr
        finally:
            await postgres_outage.end()
        await asyncio.to_thread(wait_until, lambda: healthy(api_image, environment), "healthy again")
        assert container.process.poll() is None
        code = await asyncio.to_thread(container.stop, api_image.stopsignal, service["stop_grace_period"])
        assert code in (0, -signal.Signals[api_image.stopsignal])


async def test_the_api_container_does_not_serve_when_the_migrations_fail(
    api_image: Image, compose: dict[str, Any], db_url: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """A failed `journal migrate` ends the start (`set -e`): an image older than its journal's migrations (a
    rollback) stops with the reason, although `journal serve` alone would have started."""
    await conn.execute("INSERT INTO schema_migrations (version, checksum) VALUES ('9999_from_a_newer_image.sql', '')")
    service = compose["services"]["api"]
    environment = service_environment(service, db_url) | {"JOURNAL_PORT": str(free_port())}
    with run_container(api_image, start_command(api_image, service), environment, tmp_path / "api.log") as container:
        assert await asyncio.to_thread(container.process.wait, START_TIMEOUT_S) == 2
    assert container.output() == (
        "journal migrate: the database has migrations that are not in the folder: 9999_from_a_newer_image.sql; "
        "this code is older than the database, so run a newer version\n"
    )


def test_a_command_given_to_the_api_container_runs_instead(
    api_image: Image, compose: dict[str, Any], empty_db_url: str, tmp_path: Path
) -> None:
    """`docker compose run --rm api journal migrate` runs that command (through the entrypoint), not the server."""
    service = compose["services"]["api"]
    environment = service_environment(service, empty_db_url)
    argv = [*api_image.entrypoint, "journal", "migrate"]
    with run_container(api_image, argv, environment, tmp_path / "run.log") as container:
        assert container.process.wait(timeout=START_TIMEOUT_S) == 0
    assert container.output() == f"applied {len(SHIPPED)} migration(s): {', '.join(SHIPPED)}\n"


async def test_the_demo_publishes_and_stops_cleanly_on_its_stop_signal(
    engine_image: Image, compose: dict[str, Any], db_url: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """The demo profile's container writes events to the journal and, on `docker stop` (SIGINT, which Python
    handles even as PID 1), reports what it wrote and exits 0."""
    service = compose["services"]["demo"]
    environment = service_environment(service, db_url)
    argv = start_command(engine_image, service)
    assert argv == ["journal-engine", "demo", "--rate", "5"]
    with run_container(engine_image, argv, environment, tmp_path / "demo.log") as container:
        await asyncio.to_thread(container.wait_for, r"^writing about 5 events/s")
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                if await conn.fetchval("SELECT count(*) FROM events") >= 3:
                    break
                await asyncio.sleep(0.05)
        stop = service.get("stop_signal", engine_image.stopsignal)
        grace = service.get("stop_grace_period", DOCKER_STOP_GRACE)
        assert await asyncio.to_thread(container.stop, stop, grace) == 0
    written = int(container.wait_for(r"^wrote (\d+) events$")[1])
    assert written == await conn.fetchval("SELECT count(*) FROM events")
    assert written >= 3
