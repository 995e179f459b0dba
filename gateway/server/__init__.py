"""Serving: the aiohttp server and its protocol, the worker lifecycle (signals, drain,
reload) and the supervisor of worker processes."""
