"""Package layout: ship the repository's top-level `app/` and `recipes/` inside `fercleaner`.

The checkout keeps the review app and the recipes at the top level, where people look for
them; the installed package carries them as `fercleaner.app` and `fercleaner.recipes` (read
through `importlib.resources`). Everything else about the package is in pyproject.toml.
This file exists because pyproject.toml cannot both discover `fercleaner.*` and add the two
mapped packages: listing subpackages by hand would drop the next one someone adds.
"""

from __future__ import annotations

from setuptools import find_packages, setup

#: Packages whose source folder is not their import path.
MAPPED = {"fercleaner.app": "app", "fercleaner.recipes": "recipes"}

setup(
    packages=sorted({*find_packages(include=["fercleaner", "fercleaner.*"]), *MAPPED}),
    package_dir=MAPPED,
    package_data={"fercleaner": ["py.typed"], "fercleaner.recipes": ["*.yaml"]},
)
