"""tap-capsule: Capsule CRM as Singer streams (and the shared catalogue and HTTP layer)."""
