"""Trust the gateway's signed context in an ASGI service (Starlette, FastAPI).

    app.add_middleware(GatewayContextMiddleware, keys=os.environ["GATEWAY_CONTEXT_KEYS"],
                       audience="billing")

`keys` is the output of `gateway context-key billing`; `audience` this service's upstream
name in routes.yaml. Every HTTP request and websocket then carries a verified
`gateway.context.Context` in `request.state.gateway`, or was answered 401 problem+json.
FastAPI handlers take it with the `Caller` dependency (gateway_context_asgi.dependencies).
"""

from gateway.context import Context, ContextError
from gateway_context_asgi.middleware import GatewayContextMiddleware, context_of_scope

__all__ = ["Context", "ContextError", "GatewayContextMiddleware", "context_of_scope"]
