# superintendent: the web app (default) and the orchestrator (docker-compose.yml's `orchestrator` service).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SUPERINTENDENT_DATA_DIR=/home/app/data \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
WORKDIR /app

COPY pyproject.toml README.md ./
COPY superintendent ./superintendent
RUN pip install . && rm -rf /root/.cache
COPY streamlit_app.py ./
COPY pages ./pages
COPY .streamlit/config.toml ./.streamlit/config.toml

USER app
RUN mkdir -p /home/app/data
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os, sys, urllib.request; port = os.environ.get('STREAMLIT_SERVER_PORT', '8501'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/_stcore/health', timeout=4).read() == b'ok' else 1)"

# Wait for the database, create or upgrade the schema, then serve.
CMD ["sh", "-c", "superintendent init --wait 120 && exec streamlit run streamlit_app.py"]
