# billing-proxy: `docker build -t billing-proxy .`, then see docker-compose.yml or
# deploy/kubernetes/. The image runs as an unprivileged user and writes only to
# BILLING_PROXY_HOME (the spool: mount a volume there) and /tmp; its root can be read-only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BILLING_PROXY_HOME=/var/lib/billing-proxy

WORKDIR /app
COPY pyproject.toml README.md ./
COPY billing ./billing
COPY proxy ./proxy
COPY migrations ./migrations
RUN pip install . \
    && groupadd --system --gid 10001 billing \
    && useradd --system --uid 10001 --gid billing --home-dir /var/lib/billing-proxy --no-create-home billing \
    && mkdir -p /var/lib/billing-proxy \
    && chown billing:billing /var/lib/billing-proxy

USER 10001:10001
VOLUME ["/var/lib/billing-proxy"]
EXPOSE 8080
# SIGTERM: stop accepting, give calls in flight BILLING_PROXY_SHUTDOWN_GRACE seconds (30),
# flush the ledger; give the container longer than that before SIGKILL (compose: 45 s).
STOPSIGNAL SIGTERM
# `serve` applies the migrations (under an advisory lock) before it accepts requests.
CMD ["billing-proxy", "serve", "--host", "0.0.0.0", "--port", "8080"]
