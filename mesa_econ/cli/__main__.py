"""``python -m mesa_econ.cli``: the ``mesa-econ`` command."""

from mesa_econ.cli import main

raise SystemExit(main())
