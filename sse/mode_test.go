package sse

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestModeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		accept string
		want   Mode
		err    bool
	}{
		{"default is JSON", "", "", JSON, false},
		{"JSON with application/json accept", "", "application/json", JSON, false},
		{"wg_sse=true", "?wg_sse=true", "", SSE, false},
		{"wg_sse=1", "?wg_sse=1", "", 0, true},
		{"wg_sse present without value", "?wg_sse", "", SSE, false},
		{"wg_sse empty value", "?wg_sse=", "", SSE, false},
		{"wg_sse=TRUE", "?wg_sse=TRUE", "", 0, true},
		{"wg_sse=false", "?wg_sse=false", "", JSON, false},
		{"accept event-stream", "", "text/event-stream", SSE, false},
		{"accept list with event-stream", "", "application/json, Text/Event-Stream;q=0.9", SSE, false},
		{"explicit false beats accept", "?wg_sse=false", "text/event-stream", JSON, false},
		{"once", "?wg_subscribe_once=true", "", Once, false},
		{"once present without value", "?wg_subscribe_once", "", Once, false},
		{"both present without value", "?wg_subscribe_once&wg_sse", "", OnceSSE, false},
		{"once=false", "?wg_subscribe_once=false", "", JSON, false},
		{"once with sse", "?wg_subscribe_once=true&wg_sse=true", "", OnceSSE, false},
		{"once with accept", "?wg_subscribe_once=true", "text/event-stream", OnceSSE, false},
		{"repeated wg_sse", "?wg_sse=true&wg_sse=true", "", 0, true},
		{"malformed wg_sse", "?wg_sse=maybe", "", 0, true},
		{"malformed once", "?wg_subscribe_once=yes", "", 0, true},
		{"other params ignored", "?first=3&wg_live=maybe", "", JSON, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/operations/x"+tt.query, nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			got, err := ModeOf(r)
			if tt.err {
				if !errors.Is(err, ErrInvalidFlag) {
					t.Fatalf("err = %v, want ErrInvalidFlag", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ModeOf = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestModeOfErrorDoesNotEchoInput(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/x?wg_sse=%3Cscript%3E", nil)
	_, err := ModeOf(r)
	if err == nil || err.Error() != "invalid flag value: wg_sse must be true or false" {
		t.Fatalf("err = %v", err)
	}
}

func TestFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query string
		want  bool
		err   bool
	}{
		{"", false, false},
		{"f=true", true, false},
		{"f=false", false, false},
		{"other=true", false, false},
		{"f", true, false},
		{"f=", true, false},
		{"f&f", false, true},
		{"f=1", false, true},
		{"f=0", false, true},
		{"f=TRUE", false, true},
		{"f=True", false, true},
		{"f=yes", false, true},
		{"f=true&f=true", false, true},
		{"f=true&f=false", false, true},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Flag(q, "f")
		if tt.err {
			if !errors.Is(err, ErrInvalidFlag) || err.Error() != "invalid flag value: f must be true or false" {
				t.Errorf("Flag(%q) err = %v, want ErrInvalidFlag", tt.query, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Flag(%q) = %v, %v; want %v", tt.query, got, err, tt.want)
		}
	}
}
