# The gateway on the embedded default (SQLite in the /data volume, in-process cache), compiled
# with mypyc (setup.py). The baked /app/routes.yaml is deploy/routes.yaml: its sample upstream
# `echo` is the demo echo server of deploy/compose.yaml (`python -m gateway.demo.echo` in this
# image), reached by name. Mount your own at /app/routes.yaml (or pass --config); set GATEWAY_*
# variables for production (docs/operations/deploy.md).

# The build stage has the C compiler and Python headers the compiled build needs; only the
# wheel it makes goes into the image.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gateway ./gateway
COPY auth_core ./auth_core
COPY metrics ./metrics
# mypyc type-checks with the dependencies' types, so they are installed first (the test extra
# brings mypy), then the wheel is built in this environment.
RUN pip install --no-cache-dir '.[test]' setuptools wheel \
    && GATEWAY_COMPILE=1 pip wheel --no-cache-dir --no-build-isolation --no-deps \
       --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY --from=build /wheels /wheels
# The user and group 10001 own /data (the database and the mail outbox); the image's files stay
# root's and read-only to it.
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home gateway \
    && mkdir -p /data/outbox && chown -R 10001:10001 /data

COPY deploy/routes.yaml ./routes.yaml
# Declared after /data is made and chowned: what a build step writes to a volume path after
# VOLUME is thrown away.
VOLUME ["/data"]
USER 10001:10001
ENV GATEWAY_DATABASE_URL=sqlite:////data/gateway.db \
    GATEWAY_MAIL_URL=outbox:/data/outbox
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/live').status != 200)"
CMD ["gateway", "serve", "--config", "/app/routes.yaml", "--host", "0.0.0.0", "--port", "8080"]
