package deploy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/fireboom/fireboom/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manifest is the part of the Kubernetes objects the test reads.
type manifest struct {
	Kind     string
	Metadata struct{ Name string }
	Data     map[string]string
	Spec     struct {
		Replicas       int
		MaxUnavailable any `yaml:"maxUnavailable"`
		Ports          []struct {
			Name       string
			Port       int
			TargetPort string `yaml:"targetPort"`
		}
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []container
			}
		}
	}
}

type container struct {
	Name  string
	Ports []struct {
		Name          string
		ContainerPort int `yaml:"containerPort"`
	}
	ReadinessProbe probe `yaml:"readinessProbe"`
	LivenessProbe  probe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct{ Seconds int }
		} `yaml:"preStop"`
	}
}

type probe struct {
	HTTPGet struct {
		Path string
		Port string
	} `yaml:"httpGet"`
}

func readManifests(t *testing.T) map[string]manifest {
	t.Helper()
	b, err := os.ReadFile("fireboom.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]manifest{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m manifest
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		out[m.Kind] = m
	}
	return out
}

func TestManifestsMatchTheGateway(t *testing.T) {
	ms := readManifests(t)
	for _, kind := range []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service"} {
		if _, ok := ms[kind]; !ok {
			t.Fatalf("no %s in fireboom.yaml", kind)
		}
	}
	cfg, err := config.Parse([]byte(ms["ConfigMap"].Data["fireboom.json"]), os.LookupEnv)
	if err != nil {
		t.Fatalf("the ConfigMap's fireboom.json: %v", err)
	}
	if cfg.Cluster == nil {
		t.Fatal("the ConfigMap's config has no cluster section")
	}
	_, port, _ := net.SplitHostPort(cfg.Listen)
	listen, _ := strconv.Atoi(port)

	d := ms["Deployment"].Spec
	if d.Replicas != 3 {
		t.Errorf("replicas %d, want 3", d.Replicas)
	}
	if len(d.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(d.Template.Spec.Containers))
	}
	c := d.Template.Spec.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for what, p := range map[string]probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/ready", "liveness": "/health"}[what]
		if p.HTTPGet.Path != want {
			t.Errorf("%s probe path %q, want %q", what, p.HTTPGet.Path, want)
		}
		if ports[p.HTTPGet.Port] != listen {
			t.Errorf("%s probe port %q is container port %d, the gateway listens on %d", what, p.HTTPGet.Port, ports[p.HTTPGet.Port], listen)
		}
	}
	if sp := ms["Service"].Spec.Ports; len(sp) != 1 || ports[sp[0].TargetPort] != listen {
		t.Errorf("the Service's target port %+v is not the gateway's %d", sp, listen)
	}
	grace := d.Template.Spec.TerminationGracePeriodSeconds
	pause := c.Lifecycle.PreStop.Sleep.Seconds
	if pause <= 0 {
		t.Error("no preStop pause")
	}
	if shutdown := int(cfg.ShutdownTimeout.D().Seconds()); grace <= shutdown+pause {
		t.Errorf("terminationGracePeriodSeconds %d must exceed shutdownTimeout (%ds) plus the preStop pause (%ds)", grace, shutdown, pause)
	}
	if mu := ms["PodDisruptionBudget"].Spec.MaxUnavailable; mu != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", mu)
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"AS build", "CGO_ENABLED=0", "USER nonroot", "EXPOSE 9991", "./cmd/fireboom"} {
		if !strings.Contains(s, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}
