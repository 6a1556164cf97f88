"""tap-capsule: Capsule CRM as Singer streams, and the core both plugins share.

The top level of the repository is fixed (two packages), so the boundary is stated here and
checked by `tests/test_boundaries.py`:

- Shared core, used by `target_capsule` too: `catalogue` (the one declarative description of
  Capsule's objects), `api_client` (the one HTTP layer, a package with one module per concern:
  errors, settings, auth, pacing, session), `custom_fields` (typed custom-field columns),
  `token_cache` (rotated OAuth tokens), `secrets` (secret settings masked in every output) and
  `cli` (both entry points).
- The tap itself: `tap`, `streams`, `bookmarks`. Nothing outside this package imports them.
- `sandbox/`: a local Capsule API for tests and the demo. It imports only `catalogue`, never the
  tap, the target or the Singer SDK.
- `sdk_private`: the list of private Singer SDK names the two plugins rely on.
"""
