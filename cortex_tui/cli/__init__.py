"""The ``cortex-tui`` command line: one module per command, ``main`` dispatches."""
