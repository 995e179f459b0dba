"""gateway: an asyncio API gateway and reverse proxy with a co-located auth core."""

__version__ = "0.1.0"
