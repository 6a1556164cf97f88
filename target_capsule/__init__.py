"""target-capsule: apply Singer records to Capsule CRM.

From `tap_capsule` it uses only the shared core (`catalogue`, `api_client`, `custom_fields`,
`token_cache`, `secrets`, `cli`), never the tap's streams or bookmarks: `tests/test_boundaries.py`
checks it.
"""
