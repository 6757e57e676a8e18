FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY billing ./billing
COPY proxy ./proxy
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --create-home billing
USER billing

EXPOSE 8080
# `serve` applies the migrations (under an advisory lock) before it accepts requests.
CMD ["billing-proxy", "serve", "--host", "0.0.0.0", "--port", "8080"]
