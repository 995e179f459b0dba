"""Every metric of the gateway, named in one place, built on one Registry a worker
(docs/operations/observability.md lists them). One prefix, `gateway_`, but for the process
metrics, which keep the names every Prometheus client library gives them."""

from __future__ import annotations

from metrics.registry import Registry

REQUESTS_TOTAL = "gateway_requests_total"
REQUEST_DURATION = "gateway_request_duration_seconds"
UPSTREAM_DURATION = "gateway_upstream_duration_seconds"
UPSTREAM_ERRORS = "gateway_upstream_errors_total"
ACTIVE_CONNECTIONS = "gateway_active_connections"
CONNECTIONS_OVER_LIMIT = "gateway_connections_over_limit_total"
CONFIG_RELOADS = "gateway_config_reloads_total"
TLS_HANDSHAKE_FAILURES = "gateway_tls_handshake_failures_total"
TLS_CERTIFICATE_RELOADS = "gateway_tls_certificate_reloads_total"
AUTH_FAILURES = "gateway_auth_failures_total"
ORIGIN_REJECTIONS = "gateway_origin_rejections_total"
AUDIT_DROPPED = "gateway_audit_dropped_total"
IP_REJECTIONS = "gateway_ip_whitelist_rejections_total"
API_KEY_VALIDATIONS = "gateway_api_key_validations_total"
RATE_LIMITED = "gateway_rate_limited_total"
CACHE_LOOKUPS = "gateway_auth_cache_lookups_total"
STALE_SERVED = "gateway_auth_cache_stale_served_total"
TOKEN_VALIDATIONS = "gateway_token_validations_total"  # noqa: S105 - a metric name
TOKEN_VALIDATION_DURATION = "gateway_token_validation_duration_seconds"  # noqa: S105
REVOCATION_LAG = "gateway_revocation_lag_seconds"
REDIS_DEGRADED = "gateway_redis_degraded"
SESSION_CREATIONS = "gateway_session_creations_total"
SOCKET_CONNECTIONS = "gateway_websocket_connections_total"
SOCKET_ACTIVE = "gateway_websocket_active_connections"
SOCKET_AUTH_FAILURES = "gateway_websocket_auth_failures_total"
SOCKET_CONTEXT_HITS = "gateway_websocket_context_hits_total"
BUILD_INFO = "gateway_build_info"
WORKERS = "gateway_workers"
PROCESS_CPU = "process_cpu_seconds_total"
PROCESS_RESIDENT_MEMORY = "process_resident_memory_bytes"
PROCESS_OPEN_FDS = "process_open_fds"
PROCESS_MAX_FDS = "process_max_fds"
PROCESS_START_TIME = "process_start_time_seconds"

# A revocation reaches a worker in milliseconds by Redis, within the poll interval without it.
REVOCATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Catalog:
    """The metrics a worker records, as attributes, so the hot path skips name look-ups."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.requests = r.counter(
            REQUESTS_TOTAL,
            "Requests answered, by route (or what answered: @live, @banned...), method, status.",
            ("route", "method", "status"),
        )
        self.request_duration = r.histogram(
            REQUEST_DURATION,
            "Time from request head to response handed to the client.",
            ("route",),
        )
        self.upstream_duration = r.histogram(
            UPSTREAM_DURATION,
            "Time from choosing an upstream target to its answer relayed, by route and target.",
            ("route", "upstream", "target"),
        )
        self.upstream_errors = r.counter(
            UPSTREAM_ERRORS,
            "Failed upstream exchanges, by upstream and kind of failure.",
            ("upstream", "kind"),
        )
        self.active_connections = r.gauge(ACTIVE_CONNECTIONS, "Client connections open now.")
        self.connections_over_limit = r.counter(
            CONNECTIONS_OVER_LIMIT,
            "Client connections closed at once: their address had as many open as it may.",
        )
        self.auth_failures = r.counter(
            AUTH_FAILURES,
            "Requests refused for their credential or its rights, by reason.",
            ("reason",),
        )
        self.origin_rejections = r.counter(ORIGIN_REJECTIONS, "Requests refused for their Origin.")
        self.ip_rejections = r.counter(
            IP_REJECTIONS, "API key requests refused for their client address."
        )
        self.api_key_validations = r.counter(
            API_KEY_VALIDATIONS,
            "API keys checked on routes, by result (ok, or the refusal's code).",
            ("result",),
        )
        self.rate_limited = r.counter(
            RATE_LIMITED, "Requests refused by a rate limit, by route.", ("route",)
        )
        self.cache_lookups = r.counter(
            CACHE_LOOKUPS,
            "Look-ups of the auth core's caches (token, credential, tenant) by result "
            "(hit, shared_hit: found in Redis, miss).",
            ("cache", "result"),
        )
        self.stale_served = r.counter(
            STALE_SERVED, "Credentials served from cache past its lifetime, the database down."
        )
        self.token_validations = r.counter(
            TOKEN_VALIDATIONS, "Access tokens checked, by result (ok or the code).", ("result",)
        )
        self.token_validation_duration = r.histogram(
            TOKEN_VALIDATION_DURATION,
            "Time to verify an access token that was not in the cache.",
            buckets=(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005),
        )
        self.revocation_lag = r.histogram(
            REVOCATION_LAG,
            "Time from a revocation (a logout, a revoked key, a ban) written anywhere to its "
            "being in force in this worker, for those written by another worker or replica.",
            buckets=REVOCATION_BUCKETS,
        )
        self.session_creations = r.counter(
            SESSION_CREATIONS, "Sessions opened (logins and SDK sessions)."
        )
        self.socket_connections = r.counter(SOCKET_CONNECTIONS, "Websockets opened.")
        self.socket_active = r.gauge(SOCKET_ACTIVE, "Websockets open now.")
        self.socket_auth_failures = r.counter(
            SOCKET_AUTH_FAILURES, "Websocket handshakes refused for their credential or origin."
        )
        self.socket_context_hits = r.counter(
            SOCKET_CONTEXT_HITS, "Reads of a websocket's stored context that found it."
        )
        self.redis_degraded = r.gauge(
            REDIS_DEGRADED, "Workers serving without Redis although it is configured."
        )
        self.audit_dropped = r.counter(
            AUDIT_DROPPED, "Denials not written to the audit log because too many were waiting."
        )
        self.config_reloads = r.counter(
            CONFIG_RELOADS, "Attempts to reload routes.yaml, by result.", ("result",)
        )
        self.tls_handshake_failures = r.counter(
            TLS_HANDSHAKE_FAILURES,
            "Connections to the TLS listener that did not complete a handshake, by reason.",
            ("reason",),
        )
        self.tls_certificate_reloads = r.counter(
            TLS_CERTIFICATE_RELOADS,
            "Attempts to reload the TLS certificates that found a change, by result.",
            ("result",),
        )
        self.build_info = r.gauge(
            BUILD_INFO,
            "Always 1: the gateway's version, the Python running it, and whether its request "
            "path is the compiled (mypyc) build.",
            ("version", "python", "compiled"),
            aggregate="max",
        )
        self.workers = r.gauge(WORKERS, "Worker processes serving now.")
        self.workers.set(1.0)
        self.process_cpu = r.counter(
            PROCESS_CPU, "User and system CPU time of every worker, those gone included."
        )
        self.process_resident_memory = r.gauge(
            PROCESS_RESIDENT_MEMORY, "Resident memory of the live workers, summed."
        )
        self.process_open_fds = r.gauge(
            PROCESS_OPEN_FDS, "Open file descriptors of the live workers, summed."
        )
        self.process_max_fds = r.gauge(
            PROCESS_MAX_FDS,
            "The live workers' limits on open file descriptors, summed (the ratio of "
            "process_open_fds to this is their use of it).",
        )
        self.process_start_time = r.gauge(
            PROCESS_START_TIME,
            "Start of the most recently started live worker, seconds since the epoch: it "
            "changes when any worker is restarted.",
            aggregate="max",
        )
