FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY worker ./worker
COPY migrations ./migrations
# Editable, so `payhook migrate` finds migrations/ beside the package.
RUN pip install --no-cache-dir -e . && useradd --create-home payhook
USER payhook
EXPOSE 8000
CMD ["payhook", "serve", "--host", "0.0.0.0", "--port", "8000"]
