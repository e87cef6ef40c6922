FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    YC_DATABASE_URL=sqlite:////data/bot.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY plugins ./plugins
COPY storage ./storage
COPY bot.py settings.toml ./
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /app botuser \
    && mkdir -p /data && chown botuser /data

USER botuser
VOLUME ["/data"]
CMD ["python", "bot.py"]
