# The operator image. Only the package and its pinned runtime dependencies; the local
# platform and tests stay out of it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wpenv ./wpenv
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --create-home wpenv
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "wpenv.operator"]
