"""`python -m trackstudio` is the `trackstudio` command."""
import sys

from trackstudio.app.cli import main

sys.exit(main())
