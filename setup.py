"""Setuptools shim: metadata lives in setup.cfg, build settings in pyproject.toml.

Only ``packages`` is computed here: setup.cfg can either list packages or
``find:`` them, not both, and ``sdnscent.apps`` (the top-level ``apps/`` folder,
mapped by ``package_dir`` in setup.cfg) is not under ``sdnscent/`` for find to see.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["sdnscent", "sdnscent.*"]), "sdnscent.apps"])
