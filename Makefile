# The seed's commands, as thin aliases of the package scripts (see README.md).
.PHONY: run dev test build docker-up docker-down release

run:
	npm start

dev:
	npm run dev

test:
	npm test

build:
	npm run build

docker-up:
	npm run docker:up

docker-down:
	npm run docker:down

# make release V=0.2.0
release:
	npm run release -- $(V)
