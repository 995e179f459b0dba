# The gateway on the embedded default (SQLite, in-process cache). Mount or bake your own
# routes.yaml at /app/routes.yaml; set GATEWAY_* variables for production (README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY auth_core ./auth_core
COPY metrics ./metrics
RUN pip install --no-cache-dir . && useradd --system --uid 10001 gateway \
    && mkdir -p /data && chown gateway /data

COPY routes.yaml ./routes.yaml
USER gateway
ENV GATEWAY_DATABASE_URL=sqlite:////data/gateway.db
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health').status != 200)"
CMD ["gateway", "serve", "--config", "/app/routes.yaml", "--host", "0.0.0.0", "--port", "8080"]
