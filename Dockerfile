# The operator image: the package and its pinned runtime dependencies, nothing of the
# local platform or the tests.
#
# Two stages. `build` makes a virtual environment in /opt/wpenv from pyproject.toml, whose
# runtime dependencies are all pinned (==); the final stage copies that environment and
# adds only the MariaDB client the archive step runs (mariadb-dump, mariadb). No compiler,
# no build backend, no pip in what runs.
#
# The base is the Python the project is tested with (3.11.7) on Debian 12, by exact tag;
# a release pipeline that can reach the registry adds the digest (`@sha256:...`).
# Build:  docker build -t wpenv-operator:0.1.0 .
# The image's command line is what tests/e2e/test_image.py runs against the platform.

FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wpenv ./wpenv
# pip compiles every module as it installs it: a read-only root file system never needs
# a .pyc written. pip and setuptools then leave the environment.
RUN python -m venv /opt/wpenv \
 && /opt/wpenv/bin/pip install --no-cache-dir pip==26.3 \
 && /opt/wpenv/bin/pip install --no-cache-dir . \
 && /opt/wpenv/bin/pip uninstall --yes pip setuptools

FROM python:3.11.7-slim-bookworm
# The Debian 12 MariaDB client, pinned to the bookworm-security version.
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-client=1:10.11.19-0+deb12u1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 wpenv \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin wpenv
COPY --from=build /opt/wpenv /opt/wpenv
# Two malloc arenas, not 8 per core: the handlers' 20 threads each kept an arena of their
# own (about 8 % of RSS at 300 environments, bench/scale.py); see wpenv/operator/memory.py.
ENV PATH=/opt/wpenv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
# The uid and gid the Deployment's securityContext names (manifests/base/deployment.yaml).
USER 10001:10001
# WPENV_HEALTH_PORT (/healthz) and WPENV_METRICS_PORT (/metrics).
EXPOSE 8080 9090
# Probes. Kubernetes ignores HEALTHCHECK: the Deployment has startup, readiness and
# liveness probes on /healthz of the health port, which kopf answers only while its
# event loop turns. For `docker run`, the same check from inside the container:
HEALTHCHECK --interval=20s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WPENV_HEALTH_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["python", "-m", "wpenv.operator"]
