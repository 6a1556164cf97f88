"""`python -m target_capsule.account.sync`: the same as `capsule sync`."""

import sys

from target_capsule.account.sync.cli import main

sys.exit(main())
