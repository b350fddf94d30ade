"""Delivery: the lease queue, and the worker protocol's handlers."""
