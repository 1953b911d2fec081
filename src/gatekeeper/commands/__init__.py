"""Command groups of the ``gatekeeper`` CLI (see :mod:`gatekeeper.cli`)."""
