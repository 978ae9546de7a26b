"""One module per action: each takes the decided step and a narrow context, runs its I/O,
and returns an outcome (`reconcile.outcomes`); none builds status or knows the controller."""
