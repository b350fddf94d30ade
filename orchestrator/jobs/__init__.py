"""Jobs: submission and sources, enqueuing, the lifecycle and its supervisor, worker records,
logs and results."""
