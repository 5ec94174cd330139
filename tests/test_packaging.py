"""The sdist and the wheel carry the review app and the recipes, and an installed wheel finds them.

`python -m build` makes the sdist, then the wheel from the unpacked sdist (as pip does from
an index), once for this module: a few seconds. The wheel is then installed with
`pip --target` and imported from outside the checkout. `.ci/wheel-smoke` goes further:
a fresh virtualenv with the dependencies, then synth, score and export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run `argv`; on failure, fail the test with its output."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, **kwargs)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist (`sdist`) and the wheel built from it (`wheel`)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)])
    (sdist,) = out.glob("fercleaner-*.tar.gz")
    (wheel,) = out.glob("fercleaner-*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_wheel_ships_every_module_the_app_and_the_recipes(dist: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    package = REPO / "fercleaner"
    expected = {f"fercleaner/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    expected |= {f"fercleaner/app/{p.name}" for p in (REPO / "app").glob("*.py")}
    expected |= {f"fercleaner/recipes/{p.name}" for p in (REPO / "recipes").glob("*.yaml")}
    assert {"fercleaner/app/streamlit_app.py", "fercleaner/recipes/quick.yaml"} <= expected
    assert sorted(expected - names) == [], "the wheel lacks these files of the checkout"
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"fercleaner"}, top


def test_sdist_keeps_the_repository_layout_without_links(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as tar:
        members = tar.getmembers()
    root = members[0].name.split("/")[0]
    names = {m.name.removeprefix(f"{root}/") for m in members}
    assert {"setup.py", "pyproject.toml", "app/streamlit_app.py", "recipes/quick.yaml"} <= names
    assert [m.name for m in members if m.issym() or m.islnk()] == []


def test_installed_wheel_finds_its_recipes_and_app_outside_the_checkout(
    dist: dict[str, Path], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
    _run([*pip, "--target", str(site), str(dist["wheel"])])
    probe = (
        "import json, fercleaner, fercleaner.config as c\n"
        "from fercleaner.review.launch import find_app_script\n"
        "print(json.dumps({'package': fercleaner.__file__, 'recipes': c.list_recipes(),\n"
        "    'quick': str(c.find_recipe('quick')), 'app': str(find_app_script()),\n"
        "    'epochs': c.load_recipe('quick').train.epochs}))\n"
    )
    # The installed copy comes first on the path. The checkout's editable finder still
    # answers for a package the wheel lacks, which then shows as a path in the checkout.
    env = {**os.environ, "PYTHONPATH": str(site)}
    found = json.loads(_run([sys.executable, "-c", probe], cwd=tmp_path, env=env).stdout)
    assert Path(found["package"]).is_relative_to(site)
    assert {"quick", "ferplus", "paper"} <= set(found["recipes"])
    assert Path(found["quick"]) == site / "fercleaner" / "recipes" / "quick.yaml"
    assert Path(found["app"]) == site / "fercleaner" / "app" / "streamlit_app.py"
    assert found["epochs"] > 0


def test_the_package_tree_has_no_links() -> None:
    """A link (the old `fercleaner/app -> ../app`) breaks Windows checkouts and sdists."""
    assert [str(p) for p in (REPO / "fercleaner").rglob("*") if p.is_symlink()] == []
