# One image for web, worker and beat. Build context: this repository.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY jaring ./jaring
COPY harvester ./harvester
COPY classifier ./classifier
COPY pipelines ./pipelines
COPY review ./review
COPY standins ./standins
COPY config ./config
COPY models ./models
RUN pip install -c constraints.txt . && useradd --create-home jaring && mkdir -p /app/data && chown -R jaring /app/data /app/config
USER jaring
# The packages are installed into site-packages: point every file setting at the copies under /app.
ENV JARING_DATA_DIR=/app/data JARING_MODELS_DIR=/app/models \
    JARING_SOURCES_FILE=/app/config/sources.yaml JARING_FORWARD_POLICY_FILE=/app/config/forward_policy.yaml
EXPOSE 8000
CMD ["jaring", "serve"]
