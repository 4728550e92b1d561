"""``python -m safemodel`` runs the command-line interface."""

import sys

from safemodel.cli.main import main

sys.exit(main())
