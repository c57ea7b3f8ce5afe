# featmon as a container: the daemon with its HTTP sidecar on :9108.
#   docker build -t featmon .
#   docker run -v $PWD/featmon:/etc/featmon:ro -v featmon-data:/var/lib/featmon -p 9108:9108 featmon
# ./featmon holds config.yaml and the check files it names (checks: checks/*.yaml). config.yaml
# must listen on all interfaces inside the container: http: {listen: 0.0.0.0:9108}, with the
# names the container is reached by in http.allowed_hosts (see README, Security). The state
# database and reports that config.yaml leaves unset go to the volume /var/lib/featmon.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md config.example.yaml ./
COPY requirements/build.txt ./requirements/
COPY examples ./examples
COPY monitor ./monitor
COPY checks ./checks
COPY alerts ./alerts
# featmon's wheel, built by the locked hatchling; its dependencies come from the lock below.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/build.txt \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
# tzdata: cron schedules and maintenance windows are read in IANA zones.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/featmon --create-home featmon
COPY --from=build /wheels /wheels
COPY requirements/featmon.txt /tmp/featmon.txt
# The dependencies exactly as tested (hashes checked), then featmon itself without resolving any.
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/featmon.txt \
    && pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels /tmp/featmon.txt
ENV FEATMON_DATA_DIR=/var/lib/featmon
USER 10001
WORKDIR /var/lib/featmon
VOLUME /var/lib/featmon
EXPOSE 9108
# /healthz on the port of http.listen in the mounted config.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["featmon", "health", "--config", "/etc/featmon/config.yaml"]
ENTRYPOINT ["featmon", "--log-format", "json"]
CMD ["run", "--config", "/etc/featmon/config.yaml"]
