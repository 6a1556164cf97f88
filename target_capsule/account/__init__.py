"""The account tools: undo, backup, restore and verify.

They sit beside the Singer target rather than inside it because they work on a whole Capsule
account (a change log, a backup folder, an id map) instead of on one Singer stream. They reuse the
target's write kernel (validation, payloads, the one write path) but the kernel never imports them.
"""
