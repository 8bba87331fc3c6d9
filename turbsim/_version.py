"""The version of turbsim, defined once.

Imports nothing, so any module (the data layer included) and the build
(``pyproject.toml`` reads it with setuptools' ``attr:``) can take it without importing
the package's solver.
"""
__version__ = "0.1.0"
