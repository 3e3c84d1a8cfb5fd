"""`python -m pyjetstream` runs the same CLI as the `pyjetstream` console script."""

from pyjetstream.cli.main import main

raise SystemExit(main())
