"""The request path as a pipeline of small stages, each with one async method and one job:
resolve the client address, match the route, limit the body, authenticate, set the context,
forward. `chain.Chain` runs them; a stage ends a request by raising a GatewayError."""
