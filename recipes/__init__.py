"""The shipped recipes, installed as the package `fercleaner.recipes` (see setup.py).

`fercleaner.config.list_recipes()` and `find_recipe(name)` read the YAML files beside this
one through `importlib.resources`, so a wheel install finds them as a checkout does.
"""
