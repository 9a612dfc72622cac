# The operator and its phase workers share this image:
#   operator: collectionflow run        phase Job: collectionflow worker
#
# Build it with `make image` (IMAGE_BUILDER=docker to force Docker): it first builds the
# project's wheels on the host into dist/wheels/, so this build needs no network and no
# index settings. BASE_IMAGE is any image with Python 3.11 and its venv module; without
# Docker, make image builds over a Debian base made with debootstrap.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
COPY dist/wheels /wheels
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --no-cache-dir --find-links /wheels "collectionflow-operator[ui]" \
 && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

FROM ${BASE_IMAGE}
RUN groupadd --gid 65532 collectionflow \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin collectionflow
COPY --from=build /opt/venv /opt/venv
# Bytecode is compiled at install time; a read-only root filesystem needs no writes to it.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
ENTRYPOINT ["collectionflow"]
CMD ["run"]
