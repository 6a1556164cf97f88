"""`python -m target_capsule.account.sync`: the same as `capsule sync`."""

import sys

from target_capsule.account.sync.cli import main

if __name__ == "__main__":  # importing the module (a scan of every module) runs nothing
    sys.exit(main())
