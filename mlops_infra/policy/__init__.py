"""Policy checks on the plan: the built-in security invariants and an organization's rules."""
