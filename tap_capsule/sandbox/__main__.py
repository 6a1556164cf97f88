"""`python -m tap_capsule.sandbox` is the same as `capsule sandbox`."""

from tap_capsule.sandbox.cli import main

raise SystemExit(main())
