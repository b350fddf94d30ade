"""HTTP routes: the reference's per-API endpoints, management, and the worker protocol."""
