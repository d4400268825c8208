# Foreman on the official Bun image. Point it at Postgres with DATABASE_URL or
# DATABASE_*; without them it starts an embedded Postgres inside the container
# (data under /app/.foreman, so mount a volume there to keep it).
FROM oven/bun:1.4 AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN bun install --production

FROM oven/bun:1.4
WORKDIR /app
ENV ENV=PROD PORT=7011
COPY --from=deps /app/node_modules ./node_modules
COPY package.json bunfig.toml tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
RUN mkdir -p /app/.foreman && chown -R bun:bun /app/.foreman
USER bun
EXPOSE 7011
CMD ["bun", "src/index.ts"]
