"""The co-located auth core: identity, credentials and their storage.

It never imports the gateway; the gateway calls it in-process.
"""
