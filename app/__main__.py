"""`python -m app` is the `trackstudio` command."""
import sys

from .cli import main

sys.exit(main())
