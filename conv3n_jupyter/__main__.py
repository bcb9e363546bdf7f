"""``python -m conv3n_jupyter``: the ``conv3n`` command line."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main(prog_name="conv3n")
