# Build the wheel in one stage, install it (not editable, no checkout) in the next: the image
# runs what `pip install .` gives a user (migrations inside the package), not the checkout.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -r /dist && useradd --create-home payhook
USER payhook
WORKDIR /home/payhook
EXPOSE 8000
CMD ["payhook", "serve", "--host", "0.0.0.0", "--port", "8000"]
