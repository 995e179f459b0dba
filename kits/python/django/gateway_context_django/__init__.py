"""Trust the gateway's signed context in a Django service.

In settings.py:

    INSTALLED_APPS = [..., "gateway_context_django"]
    MIDDLEWARE = [..., "gateway_context_django.middleware.GatewayContextMiddleware"]
    GATEWAY_CONTEXT_KEYS = os.environ["GATEWAY_CONTEXT_KEYS"]   # gateway context-key billing
    GATEWAY_CONTEXT_AUDIENCE = "billing"                         # the upstream's name
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "gateway_context_django.drf.GatewayContextAuthentication"
        ],
        "EXCEPTION_HANDLER": "gateway_context_django.drf.problem_exception_handler",
    }

Then `request.gateway` is the verified `gateway.context.Context` and `request.user` the
caller (gateway_context_django.users), or the request was answered 401 problem+json.
"""
