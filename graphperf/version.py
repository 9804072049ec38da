"""The graphperf version, in a module of its own.

Guarantees: this module imports nothing, so anything that writes the version into its output (the JSON
report, the HTML page's footer, the compile backend's records) reads it here without importing the
`graphperf` package root, which imports nearly everything. `graphperf.__version__` is this value.
"""

__version__ = "0.1.0"
