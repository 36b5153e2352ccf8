// Package deploy holds the container and Kubernetes files of a fireboom
// cluster (fireboom.yaml; the Dockerfile is at the repository's root) and
// the test that keeps them in step with the gateway: probe paths and
// ports, and a grace period above shutdownTimeout. See docs/cluster.md.
package deploy
