FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    YC_DATABASE_URL=sqlite:////data/bot.db

WORKDIR /app
# Dependencies first, from the runtime lock (exact versions, hashes checked; the PostgreSQL
# driver psycopg2-binary included), so a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY plugins ./plugins
COPY storage ./storage
COPY bot.py settings.toml ./
# the project itself, without resolving dependencies again
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /app botuser \
    && mkdir -p /data && chown botuser /data

USER botuser
VOLUME ["/data"]
# the bot's HTTP endpoint: message buttons, /healthz, /metrics (port YC_ACTIONS_PORT, default 8579)
EXPOSE 8579
# healthy = /healthz answers 200 (no curl in the slim image: Python's urllib, never via a proxy;
# an error status, a refused connection or a timeout exits 1)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:${YC_ACTIONS_PORT:-8579}/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"
CMD ["python", "bot.py"]
