"""`python -m mmreason ...` runs the `mmreason` command."""

from mmreason.cli import main

raise SystemExit(main())
