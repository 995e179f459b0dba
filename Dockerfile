# The gateway on the embedded default (SQLite, in-process cache), compiled with mypyc
# (setup.py). Mount or bake your own routes.yaml at /app/routes.yaml; set GATEWAY_* variables
# for production (docs/operations/deploy.md).

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
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 gateway \
    && mkdir -p /data && chown gateway /data

COPY routes.yaml ./routes.yaml
USER gateway
ENV GATEWAY_DATABASE_URL=sqlite:////data/gateway.db
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health').status != 200)"
CMD ["gateway", "serve", "--config", "/app/routes.yaml", "--host", "0.0.0.0", "--port", "8080"]
