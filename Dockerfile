# The operator and its phase workers share this image:
#   operator: collectionflow run        phase Job: collectionflow worker
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin collectionflow
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 65532:65532
WORKDIR /tmp
ENV PYTHONUNBUFFERED=1
EXPOSE 8080 9090
ENTRYPOINT ["collectionflow"]
CMD ["run"]
