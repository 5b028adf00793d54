"""``python -m autograd_lite ...`` is the ``autograd-lite`` command."""
import sys

from .cli import main

sys.exit(main())
