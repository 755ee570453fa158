"""``python -m emnist_estimators`` runs the command-line interface."""

from .cli import main

raise SystemExit(main())
