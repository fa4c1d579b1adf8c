"""`python -m cardsuite`: the command line."""

from cardsuite.cli.main import main

raise SystemExit(main())
