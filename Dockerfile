# fireboom: a static binary on a distroless base, run as a non-root user.
#
#   docker build -t fireboom .
#   docker run -p 9991:9991 -v $PWD/fireboom.json:/etc/fireboom/fireboom.json fireboom
#
# The image serves /etc/fireboom/fireboom.json (mount yours, or a ConfigMap:
# deploy/fireboom.yaml) with the operations of /etc/fireboom/operations.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/fireboom ./cmd/fireboom

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fireboom /usr/local/bin/fireboom
COPY operations /etc/fireboom/operations
USER nonroot:nonroot
EXPOSE 9991
ENTRYPOINT ["/usr/local/bin/fireboom", "serve", "-config", "/etc/fireboom/fireboom.json"]
