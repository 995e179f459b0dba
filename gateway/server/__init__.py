"""Serving: the worker lifecycle (signals, drain, reload) and the supervisor of worker
processes."""
