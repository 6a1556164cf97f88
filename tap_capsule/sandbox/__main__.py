"""`python -m tap_capsule.sandbox` is the same as the `capsule-sandbox` console script."""

from tap_capsule.sandbox.cli import main

raise SystemExit(main())
