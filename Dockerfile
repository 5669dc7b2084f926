# Build: a static binary, with the migrations, templates and static files embedded.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/rapporteur ./server \
 && mkdir -p /out/data

# Run: no shell, no package manager, a non-root user. The image uses
# DATABASE_URL (compose.yaml sets it); it never starts a Postgres itself.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rapporteur /rapporteur
# The data folder (search index) belongs to the non-root user; a named
# volume mounted there starts with this ownership.
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV ADDR=:8080 DATA_DIR=/data
VOLUME /data
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/rapporteur"]
