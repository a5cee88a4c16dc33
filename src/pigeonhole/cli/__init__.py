"""The ``pigeonhole`` command: a thin face over the Python API."""
