"""`gateway demo`: the gateway with example upstreams, to try it in one command."""
