"""gateway: an asyncio API gateway and reverse proxy with a co-located auth core."""

__version__ = "0.1.0"


def compiled() -> bool:
    """Whether this is the build compiled with mypyc (setup.py): the request path imported as
    C extensions rather than from the .py files."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from gateway.pipeline import chain

    return (chain.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))
