"""The suites shipped with brainbench, as package data: one TOML file per suite.

A package (not a plain folder) so that a non-editable install carries them and
`importlib.resources` finds them; bench/suites.py reads them, this package holds no code.
"""
