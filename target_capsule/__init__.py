"""target-capsule: apply Singer records to Capsule CRM."""
